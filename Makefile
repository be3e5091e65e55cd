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
                              src/train/*.c src/tasks/*.c src/infer/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      := $(BUILD)/libseqlab.a
BIN      := $(BUILD)/seqlab

.PHONY: all deps demo test check asan bench parity install clean
all: $(BIN) $(TESTS)

deps:
	@tools/install_deps.sh build

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# AdamW's loops call sqrtf: with errno to set, GCC's vector loop falls back
# to a scalar call per lane check and runs ~7x slower. sqrt is correctly
# rounded either way, so results are the same bits.
$(BUILD)/src/train/optim.o: CFLAGS += -fno-math-errno

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

# The main job: a character Transformer on the King James Bible, ~2 minutes.
demo: deps data/kjv.txt
	@$(MAKE) --no-print-directory $(BIN)
	$(BIN) train configs/demo.json --overwrite
	$(BIN) eval runs/demo/checkpoint.safetensors --split test
	$(BIN) generate runs/demo/checkpoint.safetensors --prompt "And God said" --max-new 400 --seed 1

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run.sh $(BUILD)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	@$(MAKE) --no-print-directory all BUILD=build-asan \
	    OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1 tests/run.sh build-asan

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
	rm -rf build build-asan

# Each test is compiled and linked from its one .c; -MMD writes its
# dependencies to BUILD/tests/test_X.d, so touching a header it includes
# (tests/mixer_check.h, src/...) rebuilds it.
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TESTS:=.d)
