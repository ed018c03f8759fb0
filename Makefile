# RestMon build. `make run` and `make test` are the two entry points; see
# README.md. Everything builds out of tree under build/.

PKGS      := luajit libuv libcurl jansson libxml-2.0 libpcre2-8 libcrypto sqlite3 libpq libargon2 libh2o libssl
PYTHON    := /usr/bin/python3
CC        ?= cc
JOBS      ?= 2

# Flavours: release (build/rel) and sanitized (build/asan, used by tests).
# V=1 shows every compiler command.
Q         := $(if $(V),,@)
FLAVOR    ?= rel
ifeq ($(FLAVOR),asan)
  OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDOPT   := -fsanitize=address,undefined
else
  OPT     := -O2 -g
  LDOPT   :=
  # The release binary allocates with jemalloc: glibc's malloc was the
  # largest single cost of a check (bench/results/checks.md). The sanitized
  # build keeps the sanitizers' allocator.
  MALLOC  := -ljemalloc
endif

O         := build/$(FLAVOR)
CFLAGS    := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC $(OPT) -Icore -I$(O)/gen \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread

CORE_SRC  := $(sort $(wildcard core/*/*.c))
CORE_OBJ  := $(patsubst %.c,$(O)/%.o,$(filter-out core/cli/main.c,$(CORE_SRC)))
MAIN_OBJ  := $(O)/core/cli/main.o
EMBED_SRC := $(sort $(wildcard lua/restmon/*.lua) $(wildcard plugins/*/*.lua) $(wildcard plugins/*/*.json) \
               $(wildcard core/store/migrations/*/*.sql) docs/openapi.json docs/api-browser.html)
EMBED_OBJ := $(O)/gen/embedded.o
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))
# bench/store_bench: the store benchmark's driver, linked like the unit tests;
# bench/sched_bench (one file): the scheduler benchmark's.
SCHED_BENCH_BIN := $(O)/bench/sched_bench
BENCH_OBJ := $(patsubst %.c,$(O)/%.o,$(filter-out bench/sched_bench.c,$(sort $(wildcard bench/*.c))))
BENCH_BIN := $(O)/bench/store_bench

.PHONY: all build deps run test test-unit test-lua test-integration bench clean install asan

all: build
build: $(O)/restmon $(O)/restmon_native.so

deps:
	@scripts/install-deps

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(O)/gen/embedded.c: $(EMBED_SRC) scripts/embed-files
	@mkdir -p $(dir $@)
	$(PYTHON) scripts/embed-files $@ $(EMBED_SRC)

$(O)/gen/embedded.o: $(O)/gen/embedded.c
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(O)/restmon: $(MAIN_OBJ) $(CORE_OBJ) $(EMBED_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LDLIBS) $(MALLOC)

# The pure C modules (json, jsonpath, xml, re) as a Lua module, so the Lua
# runtime library is tested with busted against the same code it runs on.
$(O)/restmon_native.so: $(CORE_OBJ) $(EMBED_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) -shared $(LDOPT) -o $@ $^ $(filter-out -lluajit-5.1,$(LDLIBS))

$(O)/tests/%: tests/unit/%.c $(CORE_OBJ) $(EMBED_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit $(LDOPT) -o $@ $^ $(LDLIBS) -lcmocka

$(BENCH_BIN): $(BENCH_OBJ) $(CORE_OBJ) $(EMBED_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

$(SCHED_BENCH_BIN): $(O)/bench/sched_bench.o $(CORE_OBJ) $(EMBED_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

asan:
	@$(MAKE) --no-print-directory FLAVOR=asan -j$(JOBS) build

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@scripts/run-demo

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@$(MAKE) --no-print-directory FLAVOR=asan -j$(JOBS) build units
	@scripts/run-tests

units: $(UNIT_BIN)

test-unit test-lua test-integration: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@$(MAKE) --no-print-directory FLAVOR=asan -j$(JOBS) build units
	@scripts/run-tests $(patsubst test-%,%,$@)

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build $(BENCH_BIN) $(SCHED_BENCH_BIN)
	@bench/run

install: build
	install -D -m 0755 $(O)/restmon $(DESTDIR)/usr/local/bin/restmon
	mkdir -p $(DESTDIR)/usr/local/share/restmon
	cp -r plugins $(DESTDIR)/usr/local/share/restmon/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
