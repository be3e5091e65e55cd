# seqlab: `make demo` and `make test` are the two commands; both install what
# is missing first (Debian packages, as root).
CC      ?= gcc
PREFIX  ?= /usr/local
BLASDIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
BUILD   ?= build

OPT      ?= -O3 -march=native
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fopenmp -fno-trapping-math -ffp-contract=fast \
            -MMD -MP \
            -Iinclude -Isrc $(OPT)
LDLIBS   += -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas -lfftw3f -lcjson -lm -fopenmp

LIB_SRC  := $(sort $(wildcard src/core/*.c src/ops/*.c src/mixers/*.c src/model/*.c src/api/*.c \
                              src/train/*.c src/tasks/*.c src/infer/*.c src/report/*.c \
                              src/sweep/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      := $(BUILD)/libseqlab.a
BIN      := $(BUILD)/seqlab

.PHONY: all deps browser data demo test check asan fuzz bench parity install clean
all: $(BIN) $(TESTS)

deps:
	@tools/install_deps.sh build

# Headless Chromium, in which tests/test_report_chromium.c opens `seqlab
# report`'s page; that test skips, saying so, where it cannot be installed.
browser:
	@tools/install_deps.sh chromium || echo "seqlab: chromium not installed: the report's browser check will skip" >&2

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# AdamW's loops call sqrtf: with errno to set, GCC's vector loop falls back
# to a scalar call per lane check and runs ~7x slower. sqrt is correctly
# rounded either way, so results are the same bits.
$(BUILD)/src/train/optim.o: CFLAGS += -fno-math-errno

# docs/tasks.md defines an exemplar as prototype + noise * z with the product
# rounded before the sum; a fused multiply-add would change its bits.
$(BUILD)/src/tasks/bursty.o: CFLAGS += -ffp-contract=off

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(LIB) $(LDLIBS) -o $@

# The King James Bible from Debian's bible-kjv, one verse per line.
data/kjv.txt:
	@tools/install_deps.sh data
	@mkdir -p data
	bible -m 8192 -l100000 gen1:1-rev22:21 > $@.tmp && mv $@.tmp $@

# R's sunspot.month, co2 and nottem as the timeseries task's CSVs. They are
# committed (data/*.csv), so this only regenerates them; it installs R.
data:
	@tools/install_deps.sh r
	tools/export_r_series.sh data

# The main job: a character Transformer on the King James Bible, ~2 minutes.
demo: deps data/kjv.txt
	@$(MAKE) --no-print-directory $(BIN)
	$(BIN) train configs/demo.json --overwrite
	$(BIN) eval runs/demo/checkpoint.safetensors --split test
	$(BIN) generate runs/demo/checkpoint.safetensors --prompt "And God said" --max-new 400 --seed 1

test: deps browser
	@$(MAKE) --no-print-directory all
	@tests/run.sh $(BUILD)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps browser
	@$(MAKE) --no-print-directory all BUILD=build-asan \
	    OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1 tests/run.sh build-asan

# libFuzzer on each target in tests/fuzz/ for FUZZ_SECONDS, starting from its
# committed corpus (tests/fuzz/corpus/NAME); inputs it finds go to
# build-fuzz/corpus/NAME, crashes to build-fuzz/NAME-crash-*. `make test`
# replays the committed corpus without clang (tests/test_fuzz_corpus.c).
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/*.c)))
fuzz: deps
	@tools/install_deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BUILD)/libseqlab.a BUILD=$(FUZZ_BUILD) CC=clang \
	    OPT="-O1 -g -fno-omit-frame-pointer -Wno-pass-failed -Wno-unknown-pragmas -fsanitize=fuzzer-no-link $(FUZZ_SAN)"
	@mkdir -p $(FUZZ_BUILD)/fuzz
	@for t in $(FUZZ_TARGETS); do \
	    clang $(filter-out -O3 -march=native,$(CFLAGS)) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) \
	        -Itests tests/fuzz/$$t.c $(FUZZ_BUILD)/libseqlab.a $(LDLIBS) -o $(FUZZ_BUILD)/fuzz/$$t \
	        || exit 1; \
	done
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	    UBSAN_OPTIONS=print_stacktrace=1 $(FUZZ_BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) \
	        -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/$$t- \
	        $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t > $(FUZZ_BUILD)/$$t.log 2>&1; \
	    rc=$$?; grep -E "DONE|stat::number_of_executed_units|stat::average_exec_per_sec" \
	        $(FUZZ_BUILD)/$$t.log; \
	    if [ $$rc -ne 0 ]; then tail -n 40 $(FUZZ_BUILD)/$$t.log; exit 1; fi; \
	done

# Training-step speed against PyTorch (tools/bench_torch.py) on the same
# thread count, in the same run.
bench: deps
	@tools/install_deps.sh torch
	@$(MAKE) --no-print-directory $(BIN)
	$(BIN) bench --threads 2 --steps 10 --compare
	$(BIN) bench --threads 1 --steps 6 --compare

# Regenerate the PyTorch-oracle fixtures live and compare (needs python3-torch).
parity: deps
	@tools/install_deps.sh torch
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 tools/oracle.py --selftest
	tools/make_fixtures.sh $(BUILD) $(BUILD)/parity
	SEQLAB_FIXTURES=$(BUILD)/parity $(BUILD)/tests/test_parity
	for o in tools/oracle_*.py; do \
	    /usr/bin/python3 $$o --all $(BUILD)/parity || exit 1; done
	SEQLAB_FIXTURES=$(BUILD)/parity $(BUILD)/tests/test_mixer_parity

# The public API is include/seqlab.h alone; src/'s headers are internal.
install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/seqlab
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libseqlab.a
	install -m 644 include/seqlab.h $(DESTDIR)$(PREFIX)/include/seqlab.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/.*SEQLAB_VERSION "\(.*\)"/\1/p' src/core/status.h)|' \
	    -e 's|@BLASDIR@|$(BLASDIR)|' tools/seqlab.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/seqlab.pc

clean:
	rm -rf build build-asan build-fuzz

# Each test is compiled and linked from its one .c; -MMD writes its
# dependencies to BUILD/tests/test_X.d, so touching a header it includes
# (tests/mixer_check.h, src/...) rebuilds it.
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TESTS:=.d)
