/*
 * fuzz.h - the entry point every fuzz target defines.
 *
 * libFuzzer calls it for each input; replay_main.c calls it for each file of
 * a corpus.  Declared here so each target's definition has its prototype
 * (-Wmissing-prototypes).  It returns 0; the data is borrowed.
 */
#ifndef ENGRAM_TESTS_FUZZ_H
#define ENGRAM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
