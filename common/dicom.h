/*
 * dicom — our own reader of DICOM Part 10 files (PS3.10) and data sets
 * (PS3.5), and the DICOM JSON Model (PS3.18 Annex F) written over it.
 *
 * Two layers:
 *
 *  1. dicom_read_fd() / dicom_read_mem() walk a file element by element
 *     and hand each event to a visitor: element, sequence start and end,
 *     item start and end, encapsulated pixel data fragment.  Every event
 *     carries the tag, VR, value length (defined or DICOM_UNDEFINED), the
 *     offset of the value in the stream, the nesting path and whether the
 *     element belongs to the file meta group, so a writer can rebuild a
 *     file (de-identification, issue #5) from the events and the offsets.
 *     Accepted: Part 10 with the 128-byte preamble and "DICM", "DICM"
 *     without the preamble, and a bare data set (no meta group) whose
 *     first element is of group 0002 or 0008; transfer syntaxes implicit
 *     VR little endian, explicit VR little and big endian, deflated
 *     explicit VR little endian (inflated as a stream), and every other
 *     (compressed) syntax as explicit VR little endian with encapsulated
 *     pixel data.  Sequences and items of defined and undefined length
 *     nest up to DICOM_MAX_DEPTH.
 *
 *  2. dicom_json() turns one file into the JSON Model object of its data
 *     set (the meta group and group lengths left out), and the few
 *     convenience fields records are partitioned and filtered by.
 *
 * Bulk data is never read into memory: a value of VR OB, OD, OF, OL, OV,
 * OW or UN longer than the visitor's bulk threshold, any value longer than
 * DICOM_MAX_VALUE, pixel data, and encapsulated fragments are skipped (by
 * offset on a file, read and dropped on a pipe, inflated and dropped in a
 * deflated stream).  Memory is bounded by DICOM_MAX_VALUE plus the
 * nesting path.
 *
 * Errors: MLK_PARTIAL for input that is not DICOM, is truncated or breaks
 * the encoding (message names the byte offset, never a value); MLK_SYSTEM
 * for read errors.  A visitor returning non-zero stops the walk, and
 * dicom_read_* return that value.
 *
 * Ownership: events and the values they point to live until the visitor
 * returns; struct dicom_doc is caller-owned (dicom_doc_release).
 */
#ifndef MLK_DICOM_H
#define MLK_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "status.h"

#define DICOM_UNDEFINED 0xffffffffu
#define DICOM_MAX_DEPTH 64
#define DICOM_MAX_VALUE (16u << 20)
#define DICOM_BULK_DEFAULT 1024u

#define DICOM_TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))
#define DICOM_GROUP(t) ((uint16_t)((t) >> 16))
#define DICOM_ITEM DICOM_TAG(0xfffe, 0xe000)
#define DICOM_ITEM_DELIM DICOM_TAG(0xfffe, 0xe00d)
#define DICOM_SEQ_DELIM DICOM_TAG(0xfffe, 0xe0dd)
#define DICOM_PIXEL_DATA DICOM_TAG(0x7fe0, 0x0010)

enum dicom_syntax {
	DICOM_IMPLICIT_LE,
	DICOM_EXPLICIT_LE,
	DICOM_EXPLICIT_BE,
	DICOM_DEFLATED_LE,
};

/* What the reader learnt before the data set: delivered with every event. */
struct dicom_info {
	int preamble;            /* 128-byte preamble and "DICM" */
	int has_meta;            /* a file meta group (0002,xxxx) */
	char ts_uid[65];         /* (0002,0010), "" without a meta group */
	enum dicom_syntax syntax;
	/* Offset of the data set's first byte in the file (after the meta
	 * group); for a deflated syntax, offsets of data set events count
	 * in the inflated stream from there. */
	unsigned long long dataset_offset;
};

enum dicom_event {
	DICOM_ELEMENT,           /* a value (or bulk data skipped) */
	DICOM_SEQ_BEGIN,         /* SQ, or encapsulated pixel data */
	DICOM_SEQ_END,
	DICOM_ITEM_BEGIN,
	DICOM_ITEM_END,
	DICOM_FRAGMENT,          /* one item of encapsulated pixel data */
	DICOM_DATASET_BEGIN,     /* after the meta group (tag 0, no value) */
};

/* One level of the nesting path: a sequence and the item inside it. */
struct dicom_level {
	uint32_t tag;
	uint32_t item;           /* 0-based item index */
};

struct dicom_elem {
	uint32_t tag;
	char vr[3];              /* "PN", "SQ", ...; "UN" when unknown */
	uint32_t len;            /* value length, or DICOM_UNDEFINED */
	/* Offset of the value (of the element header for *_END events). */
	unsigned long long offset;
	unsigned long long header_offset; /* of the tag */
	int depth;               /* 0 at top level */
	const struct dicom_level *path;   /* depth levels, outermost first */
	int meta;                /* part of the file meta group */
	int encapsulated;        /* SEQ_* / FRAGMENT of encapsulated pixels */
	int big_endian;          /* byte order of binary values */
	/* The value for DICOM_ELEMENT when it was read, else NULL (bulk). */
	const unsigned char *value;
	const struct dicom_info *info;
};

struct dicom_visitor {
	void *ctx;
	/* Non-zero stops the walk and is returned. */
	int (*event)(void *ctx, enum dicom_event ev,
		     const struct dicom_elem *el);
	uint32_t bulk_threshold;  /* 0: DICOM_BULK_DEFAULT */
};

/*
 * Cheap content check on the first bytes of a source (132 are enough):
 * 1 when p starts like DICOM (DICM at 128 or 0, or a plausible first
 * element of group 0002 or 0008).
 */
int dicom_detect(const unsigned char *p, size_t n);

/* Walk the file open on fd from offset 0 (pread when it can, else read);
 * name names it in errors. */
int dicom_read_fd(int fd, const char *name, const struct dicom_visitor *v,
		  struct mlk_error *e);
/* Walk n bytes at p. */
int dicom_read_mem(const void *p, size_t n, const char *name,
		   const struct dicom_visitor *v, struct mlk_error *e);

/* The VR of a tag in implicit VR: the dictionary's, LO for private
 * creators, UL for group lengths, else "UN". */
const char *dicom_dict_vr(uint32_t tag);

struct dicom_dict_entry {
	uint32_t tag;
	char vr[3];
};
extern const struct dicom_dict_entry dicom_dict[];
extern const size_t dicom_dict_len;

/*
 * A file as a record: json holds the members of the record object without
 * its braces: the convenience fields (modality, date, study_date,
 * body_part, study_instance_uid, series_instance_uid, sop_instance_uid,
 * sop_class_uid, transfer_syntax, those present) then "dicom": the JSON
 * Model of the data set.  Text is made UTF-8 (ISO_IR 192 as is, other
 * character sets read as ISO 8859-1); binary values up to the bulk
 * threshold are InlineBinary, longer ones carry only "vr".
 */
enum dicom_field {
	DF_MODALITY, DF_DATE, DF_STUDY_DATE, DF_BODY_PART, DF_STUDY_UID,
	DF_SERIES_UID, DF_SOP_UID, DF_SOP_CLASS, DF_TRANSFER_SYNTAX, DF_N
};

struct dicom_doc {
	struct buf json;
	/* The convenience fields as UTF-8 text, empty when absent; date is
	 * the study date as YYYY-MM-DD (unset when not a date). */
	struct buf f[DF_N];
};

/* The member name of field i: "modality", "date", ... */
const char *dicom_field_name(enum dicom_field i);
void dicom_doc_release(struct dicom_doc *d);
/* Partition sources: any convenience field by its member name. */
int dicom_doc_lookup(const struct dicom_doc *d, const char *name,
		     const char **val, size_t *len);

int dicom_json_fd(int fd, const char *name, struct dicom_doc *d,
		  struct mlk_error *e);
int dicom_json_mem(const void *p, size_t n, const char *name,
		   struct dicom_doc *d, struct mlk_error *e);

#endif
