/*
 * embedded.h - declaring the files CMake bundles into the binary
 * (engram_embed_files in CMakeLists.txt, src/core/embedded.S.in).
 *
 * EG_EMBEDDED(name) declares `name` (the file's bytes, followed by one NUL
 * that name_size does not count) and `name_size`.  Both are static, read-only
 * data of the program: never freed, safe from any thread.
 */
#ifndef ENGRAM_CORE_EMBEDDED_H
#define ENGRAM_CORE_EMBEDDED_H

#include <stdint.h>

#define EG_EMBEDDED(name)                                                                                              \
    extern const unsigned char name[];                                                                                 \
    extern const uint64_t name##_size

#endif
