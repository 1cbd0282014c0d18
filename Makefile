# engram front door.  `make run` and `make test` install what they need on a
# fresh Debian machine (as root) and are quick when everything is there.
.PHONY: all build run test test-unit setup bench fuzz clean install deb

all: build

setup:
	@scripts/setup.sh

build:
	@scripts/setup.sh --quiet
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build

run:
	@scripts/run.sh

# make install [PREFIX=/usr/local] [DESTDIR=...]: the binary, its manual page,
# bash completion, systemd units, /etc/engram/engram.env, the docs, and the
# encoder's model files when installed here (docs/operations.md, "Installing").
PREFIX ?= /usr/local
install:
	@scripts/setup.sh --quiet
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build build
	DESTDIR=$(DESTDIR) cmake --install build

# make deb [PREFIX=/usr]: engram_<version>_<arch>.deb (and engram-models when
# the weights are installed here) in build-deb/.
deb:
	@scripts/setup.sh --quiet
	cmake -S . -B build-deb -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(if $(filter command line,$(origin PREFIX)),$(PREFIX),/usr)
	cmake --build build-deb
	cd build-deb && cpack -G DEB

test:
	@scripts/test.sh

# Fast inner loop: plain build, unit tests only (no Neo4j).
test-unit: build
	cd build && ctest -L unit --output-on-failure

# Long fuzzing session: make fuzz FUZZ_TARGET=fuzz_packstream FUZZ_SECONDS=3600
FUZZ_TARGET ?= fuzz_packstream
FUZZ_SECONDS ?= 600
fuzz:
	CC=clang cmake -S . -B build-fuzz -G Ninja -DENGRAM_FUZZ=ON
	cmake --build build-fuzz --target $(FUZZ_TARGET)
	mkdir -p build-fuzz/corpus-$(FUZZ_TARGET)
	./build-fuzz/$(FUZZ_TARGET) -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$(FUZZ_TARGET) tests/fuzz/corpus/$(FUZZ_TARGET)

clean:
	rm -rf build build-test build-tsan build-fuzz build-bench
