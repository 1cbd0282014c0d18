/*
 * params_int.h - bolt_params internals for the connection code (src/bolt/).
 *
 * Not part of the public API: only the .c files of src/bolt/ include this.
 *
 * Thread-safety: as bolt_params (one owner).
 */
#ifndef ENGRAM_BOLT_PARAMS_INT_H
#define ENGRAM_BOLT_PARAMS_INT_H

#include "bolt/conn.h"
#include "bolt/packstream.h"

/*
 * Write the complete parameter map (header with the entry count, then the
 * already-encoded entries) into w.  NULL params writes an empty map.  If the
 * params carry a sticky error, that error is stored in w and returned;
 * otherwise returns bolt_ps_writer_error(w).
 */
int bolt_params__encode(const bolt_params *p, bolt_ps_writer *w);

/* Number of entries appended so far (0 for NULL). */
size_t bolt_params__count(const bolt_params *p);

#endif
