# SPDX-License-Identifier: GPL-2.0
#
# Top-level build: the module (through the kernel's kbuild, which reads our
# Kbuild file) and the qcowctl tool.  Tests and checks live in scripts/.
#
#   make [all]          module for KDIR + tools/qcowctl
#   make check          everything, as CI runs it (scripts/check)
#   make demo           boot a guest and show qcowctl at work (scripts/demo)
#   make bench          fio on qcow2.ko vs loop vs qemu-nbd in a guest (scripts/bench)
#   make static         W=1, sparse, checkpatch, shellcheck
#   make vm-check       build + selftests in a guest per kernel
#   make fuzz           fuzz format.c for FUZZ_SECONDS (default 600)
#   make install-deps   Debian packages and kernels (as root)
#
# KDIR defaults to the running kernel's build dir, or else the newest
# installed one: the host kernel may well have no headers.

KVER_RUNNING := $(shell uname -r)
KDIR ?= $(firstword \
	$(wildcard /lib/modules/$(KVER_RUNNING)/build) \
	$(shell ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1))
FUZZ_SECONDS ?= 600

.PHONY: all module tools clean install-deps check vm-check demo fuzz static \
	selftests-build bench

all: module tools

module:
	@test -n "$(KDIR)" || { echo "no kernel build dir; set KDIR=" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools:
	$(MAKE) -C tools/qcowctl

selftests-build:
	$(MAKE) -C selftests/qcow2

clean:
	-test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	for d in tools/qcowctl tools/tests tools/fuzz selftests/qcow2; do \
		test ! -f $$d/Makefile || $(MAKE) -C $$d clean || exit 1; \
	done
	rm -rf build

install-deps:
	scripts/install-deps

check:
	scripts/check

vm-check:
	scripts/check build guest

static:
	scripts/static-checks

demo:
	scripts/demo

bench:
	scripts/bench

fuzz:
	$(MAKE) -C tools/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)
