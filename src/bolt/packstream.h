/*
 * packstream.h - PackStream v1 encoder and decoder (packstream_write.c,
 * packstream_read.c).
 *
 * Encoder: bolt_ps_writer appends to an eg_buf.  Collections carry their
 * size up front (as the format requires), so the caller states counts first:
 *
 *     bolt_ps_map_begin(w, 2);
 *     bolt_ps_str(w, "name");  bolt_ps_str(w, "alice");
 *     bolt_ps_str(w, "vec");   bolt_ps_float_list(w, vec, 1536);
 *
 * Errors are sticky: after the first failure every call is a no-op and
 * bolt_ps_writer_error() returns the code (so a long sequence of writes is
 * checked once).  Integers use the smallest encoding.
 *
 * Decoder: bolt_ps_decode() reads one value from (ptr, len) into the arena,
 * never trusting lengths: a declared size larger than the remaining input, a
 * nesting deeper than EG_LIMIT_PS_DEPTH or a reserved marker is EG_EPROTO;
 * nothing is allocated from a declared length before it is checked against
 * the bytes actually present.
 *
 * Thread-safety: none; one writer/decoder per thread.
 */
#ifndef ENGRAM_BOLT_PACKSTREAM_H
#define ENGRAM_BOLT_PACKSTREAM_H

#include "bolt/value.h"
#include "core/buf.h"
#include "core/err.h"

#include <jansson.h>
#include <stdint.h>

typedef struct bolt_ps_writer {
    eg_buf *buf; /* borrowed */
    int err;
} bolt_ps_writer;

void bolt_ps_writer_init(bolt_ps_writer *w, eg_buf *buf);
int bolt_ps_writer_error(const bolt_ps_writer *w);

void bolt_ps_null(bolt_ps_writer *w);
void bolt_ps_bool(bolt_ps_writer *w, bool b);
void bolt_ps_int(bolt_ps_writer *w, int64_t i);
void bolt_ps_float(bolt_ps_writer *w, double f);
void bolt_ps_bytes(bolt_ps_writer *w, const void *p, size_t n);
void bolt_ps_str(bolt_ps_writer *w, const char *s);          /* NULL writes null */
void bolt_ps_strn(bolt_ps_writer *w, const char *s, size_t n); /* n bytes (may hold NULs); NULL writes null */
void bolt_ps_list_begin(bolt_ps_writer *w, size_t n);
void bolt_ps_map_begin(bolt_ps_writer *w, size_t n);
void bolt_ps_struct_begin(bolt_ps_writer *w, uint8_t tag, size_t nfields);
/* Convenience: a list of n floats / ints / strings. */
void bolt_ps_float_list(bolt_ps_writer *w, const double *v, size_t n);
void bolt_ps_float32_list(bolt_ps_writer *w, const float *v, size_t n);
void bolt_ps_int_list(bolt_ps_writer *w, const int64_t *v, size_t n);
void bolt_ps_str_list(bolt_ps_writer *w, const char *const *v, size_t n);
/* Temporal / spatial helpers (write the 5.x structures). */
void bolt_ps_date(bolt_ps_writer *w, int64_t days);
void bolt_ps_datetime(bolt_ps_writer *w, int64_t epoch_seconds, int64_t nanos, int64_t tz_offset_seconds);
void bolt_ps_datetime_zone_id(bolt_ps_writer *w, int64_t epoch_seconds, int64_t nanos, const char *tz_id);
void bolt_ps_local_datetime(bolt_ps_writer *w, int64_t seconds, int64_t nanos);
void bolt_ps_time(bolt_ps_writer *w, int64_t nanos, int64_t tz_offset_seconds);
void bolt_ps_local_time(bolt_ps_writer *w, int64_t nanos);
void bolt_ps_duration(bolt_ps_writer *w, int64_t months, int64_t days, int64_t seconds, int64_t nanos);
void bolt_ps_point2d(bolt_ps_writer *w, int64_t srid, double x, double y);
void bolt_ps_point3d(bolt_ps_writer *w, int64_t srid, double x, double y, double z);
/* Re-encode a decoded value (round trips, forwarding); 5.x graph layouts. */
void bolt_ps_value(bolt_ps_writer *w, const bolt_value *v);
/* Same, choosing the graph structure layout: bolt_major 4 writes 3/5/3 fields. */
void bolt_ps_value_major(bolt_ps_writer *w, const bolt_value *v, int bolt_major);
/* Append n bytes that already are PackStream (e.g. a pre-encoded map body). */
void bolt_ps_raw(bolt_ps_writer *w, const void *p, size_t n);
/*
 * Encode a JSON value: null/bool/int/real/string/array/object map directly
 * (JSON integers become PackStream Integer, reals become Float).
 */
void bolt_ps_json(bolt_ps_writer *w, const json_t *j);

/*
 * Decode one value from p[0..len).  On success *out points into `arena`
 * (borrowed; valid until the arena is reset) and *used is the number of bytes
 * consumed.  Structures are decoded as typed values; `bolt_major` (4 or 5)
 * selects the field layout of graph structures.
 */
int bolt_ps_decode(const uint8_t *p, size_t len, bolt_arena *arena, int bolt_major,
                   const bolt_value **out, size_t *used, eg_error *err);

/*
 * Convert a decoded value to JSON (new reference, caller json_decref's).
 * Nodes become {"elementId","labels","properties"}, relationships
 * {"elementId","type","startNodeElementId","endNodeElementId","properties"},
 * temporal values ISO-8601 strings, durations ISO "P..." strings, points
 * {"srid","x","y"[,"z"]}, bytes base64.  NULL on OOM.
 */
json_t *bolt_value_to_json(const bolt_value *v);

#endif
