/* TEMPORARY stub until the scrub branch lands. */
#ifndef MLK_SCRUB_H
#define MLK_SCRUB_H
#include <stddef.h>
#include "buf.h"
#define SCRUB_ALL 0xffffu
struct scrub;
struct scrub *scrub_new(unsigned detectors);
void scrub_free(struct scrub *s);
void scrub_clear_known(struct scrub *s);
void scrub_add_known(struct scrub *s, const char *v, size_t n, const char *kind);
size_t scrub_text(struct scrub *s, const char *in, size_t n, struct buf *out);
#endif
