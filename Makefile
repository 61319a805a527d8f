# SPDX-License-Identifier: GPL-2.0
# contigmem: the entry points. Each target builds what is stale and says what it does.
#
#   make              build contigmem.ko (against KDIR, by default the cached test kernel)
#   make run          set up, build, boot the test kernel, load the module, run the demo
#                     (RUN='cmd' runs your own command in the guest, FILES='a b' adds files)
#   make test         set up, build, run the test suite in the guest and the harness self-tests
#   make bench        set up, build, boot the benchmark kernel and measure every allocator,
#                     mapping and transfer method; writes out/bench/report/ (BENCH_ARGS=--quick)
#   make stress       a long randomised stress/fuzz pass (STRESS_SEED, STRESS_ITERATIONS,
#                     STRESS_SECONDS, STRESS_THREADS, STRESS_PROCS; FLAVOUR=race: under KCSAN)
#   make kernel       fetch and build the test kernel (FLAVOUR=debug|bench|race)
#   make deps         install the Debian packages and bindgen the build needs
#   make userspace    build the static guest binaries (library, CLI, tests)
#   make examples     build the C example (static, for the guest) into out/examples/
#   make install      install contigmem.ko (modules_install for KDIR) and the uapi header
#                     (DESTDIR, PREFIX=/usr/local); make uninstall removes them
#   make rust-analyzer  write rust-project.json for the module crate (for your editor)
#   make clean        remove the repo's build output (the kernel cache stays)

FLAVOUR ?= debug
export FLAVOUR
KDIR ?=
RUN ?= contigmem info && contigmem demo
export RUN
FILES ?=
DESTDIR ?=
PREFIX ?= /usr/local
TARGET := x86_64-unknown-linux-gnu
BINDIR := $(CURDIR)/userspace/target/$(TARGET)/release

.PHONY: all bench clippy stress module deps kernel userspace examples install uninstall rust-analyzer run test clean

all: module

clippy: deps
	@touch rust/contigmem_main.rs && CLIPPY=1 KDIR="$(KDIR)" qemu/module.sh >/dev/null

module:
	+@KDIR="$(KDIR)" qemu/module.sh >/dev/null

deps:
	@qemu/deps.sh

kernel: deps
	@qemu/kernel.sh >/dev/null

userspace:
	@echo "userspace: cargo build (static binaries for the guest)"
	@cd userspace && RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build --quiet --release --locked --target $(TARGET)

examples: out/examples/contigmem-example out/examples/contigmem-edu

out/examples/%: examples/c/%.c include/uapi/linux/contigmem.h
	@echo "examples: cc -static $@"
	@mkdir -p $(@D)
	@$(CC) -static -O2 -Wall -Wextra -Werror -I include/uapi -o $@ $<

install uninstall:
	+@KDIR="$(KDIR)" DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" qemu/install.sh $@

rust-analyzer:
	+@KDIR="$(KDIR)" qemu/rust-analyzer.sh >/dev/null

run: deps userspace
	@ko=$$(qemu/module.sh) && MODULE=$$ko BINDIR=$(BINDIR) qemu/run.sh --exec "$$RUN" \
		$(foreach f,$(FILES),--add $(f))

# make bench: the benchmark kernel flavour, one boot, a report in out/bench/report/.
BENCH_ARGS ?=
export BENCH_ARGS
bench: deps userspace
	@FLAVOUR=bench qemu/kernel.sh >/dev/null
	@BINDIR=$(BINDIR) qemu/bench.sh

# make stress: the long randomised pass under the debug kernel, then kmemleak and an unload.
STRESS_SEED ?= $(shell date +%s)
STRESS_ITERATIONS ?= 20000
STRESS_SECONDS ?= 600
STRESS_THREADS ?= 3
STRESS_PROCS ?= 2
stress: deps userspace
	@ko=$$(qemu/module.sh) && MODULE=$$ko BINDIR=$(BINDIR) qemu/run.sh --tap \
		--timeout $$(( $(STRESS_SECONDS) + 900 )) --add tests/guest/stress.sh \
		--exec "sh /stress.sh $(STRESS_SEED) $(STRESS_ITERATIONS) $(STRESS_SECONDS) $(STRESS_THREADS) $(STRESS_PROCS)"

test: deps userspace examples
	@BINDIR=$(BINDIR) tests/run.sh

clean:
	rm -rf out userspace/target
