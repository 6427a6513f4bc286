/*
 * objdeid — the objects behind records, de-identified on their way
 * through mlk-deid: a record whose _mlk.blob names a DICOM file
 * (_mlk.type "dicom") or a VCF/BCF/SAM/BAM/CRAM file gets a de-identified
 * copy of that object in the object store (common/dicomwrite.c, PS3.15
 * basic profile; common/gendeid.c), and the output record's _mlk.blob
 * names the copy.  The original object stays untouched (raw is
 * write-once).
 *
 * A genomics copy that can be indexed (bgzip VCF, BCF, sorted BAM or
 * CRAM: gendeid_index()) gets its index stored as an object too, named
 * by "index":"sha256:HEX" right after "blob" in the output's _mlk; an
 * "index" the input carried is cut.  Records of the original's indexes
 * (_mlk.type tbi, bai, crai, csi) describe a byte layout the copy does
 * not have: they are left out on purpose, without error, and counted
 * (objdeid_superseded()).
 *
 * Fail closed: a record with a blob that cannot be de-identified (burned-
 * in annotation, a FASTQ or FASTA file, an unreadable object, an object
 * missing from the store) is left out with the reason, never passed on
 * pointing to identifying bytes.  Records without a blob are copied
 * unchanged (one memmem per record decides).
 *
 * Tokens are the EHR engine's (deid_token() of the same struct deid), so
 * PatientID, PatientName and VCF/SAM sample names become the token the
 * patient's EHR records carry.  Dates in DICOM follow the basic profile
 * (removed, emptied or dummies): the per-patient offset of the EHR
 * engine is not exported by common/deid.h yet, so the Modified Dates
 * option is not offered here.
 *
 * New objects go through a temporary file (tmpfile(3)), then
 * object_put_fd() and object_publish(): hashed, fsynced, read-only, named
 * by their SHA-256.  Same input, key and project: same bytes, same name.
 *
 * Ownership: struct objdeid borrows the lake and the struct deid, which
 * must outlive it; objdeid_free() releases the rest.
 */
#ifndef MLK_OBJDEID_H
#define MLK_OBJDEID_H

#include <stddef.h>

#include "buf.h"
#include "deid.h"
#include "lake.h"
#include "status.h"

struct objdeid;

struct objdeid *objdeid_new(const struct lake *l, struct deid *d,
			    struct mlk_error *e);
void objdeid_free(struct objdeid *od);

/* One record (a line without its '\n'): appended to out as it should be
 * written (with '\n').  MLK_PARTIAL with the reason (no value quoted)
 * when the record must be left out (nothing appended); MLK_SYSTEM when
 * the store cannot be written. */
enum mlk_status objdeid_record(struct objdeid *od, const char *line,
			       size_t n, struct buf *out, struct mlk_error *e);

/* Objects written so far (new or already stored). */
unsigned long long objdeid_count(const struct objdeid *od);

/* Index records (tbi, bai, crai, csi) left out on purpose so far. */
unsigned long long objdeid_superseded(const struct objdeid *od);

#endif
