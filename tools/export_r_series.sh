#!/bin/sh
# Exports three of R's datasets (Debian's r-base-core) as the CSVs of the
# timeseries task (docs/tasks.md, "timeseries"):
#   DIR/sunspot_month.csv  sunspot.month, monthly mean sunspot numbers 1749-2013 (3177 rows)
#   DIR/co2.csv            co2, Mauna Loa CO2 in ppm, monthly 1959-1997 (468 rows)
#   DIR/nottem.csv         nottem, Nottingham mean air temperature in F, monthly 1920-1939 (240 rows)
# Each file: a header row "time,NAME", then one row per month in time order;
# time is R's time() of the series, year + (month - 1) / 12, printed with 4
# decimals; the value is printed with up to 15 significant digits (R's
# as.character), which gives back the stored numbers exactly.
# The CSVs are committed, so tests and CI never need R; `make data` reruns this.
#   usage: tools/export_r_series.sh [DIR]   (default data)
set -e
dir=${1:-data}
mkdir -p "$dir"
Rscript --vanilla - "$dir" <<'R'
dir <- commandArgs(TRUE)[1]
series <- c(sunspot_month = "sunspot.month", co2 = "co2", nottem = "nottem")
for (file in names(series)) {
    name <- series[[file]]
    x <- get(name, envir = as.environment("package:datasets"))
    stopifnot(frequency(x) == 12, !anyNA(x))
    rows <- paste(sprintf("%.4f", as.numeric(time(x))), as.character(as.numeric(x)), sep = ",")
    path <- file.path(dir, paste0(file, ".csv"))
    writeLines(c(paste0("time,", name), rows), path)
    cat(sprintf("%s: %d rows of %s (%s)\n", path, length(x), name, R.version.string))
}
R
