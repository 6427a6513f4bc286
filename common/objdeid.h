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
 * Every object left out gets a reason record in the quarantine zone,
 * quarantine/_deid/<project>/<hex>.json (named by the object's hash, so a
 * rerun replaces it rather than piling up), besides the message; the
 * record itself is not kept there (the raw object and its raw record
 * stay in raw/).  If the reason cannot be written, the call fails with
 * MLK_SYSTEM.
 *
 * Tokens are the EHR engine's (deid_token() of the same struct deid), so
 * PatientID, PatientName and VCF/SAM sample names become the token the
 * patient's EHR records carry.  Dates in DICOM follow the profile's
 * "dicom:" options (mlk-profile(5)): the basic profile (removed, emptied
 * or dummies) by default; under modified-dates, moved by the patient's
 * offset from deid_shift_days(), the days his EHR records move.
 *
 * A new DICOM object is written straight into a temp file of the store
 * (object_create()), hashed as it is written, and named by object_seal();
 * a genomics copy (and its index) is written by htslib under a name
 * reserved in the store (object_temp_name()) and adopted (object_adopt()).
 * Both are published in batches by objdeid_flush() (object_publish_many():
 * fsynced together, read-only, named by their SHA-256) before the records
 * naming them are written; the quarantine reasons written meanwhile are
 * synced and renamed into place in the same call.  An object refused
 * before it is written (burned-in text) costs no file in the store.
 * Same input, key and project: same bytes, same name.
 *
 * Threads: one struct objdeid per thread.  Each holds its own copy of the
 * project's keys (deid_keys_new()), its own DICOM engine and record; the
 * object store and the quarantine folder take concurrent writers.
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
#include "profile.h"
#include "samplemap.h"
#include "status.h"

struct objdeid;

/* The DICOM options, burned-in acceptance and private tags kept come
 * from prof's "dicom:" mapping (mlk-profile(5)); project names the
 * quarantine folder.  MLK_USAGE when prof asks what cannot be done. */
struct objdeid *objdeid_new(const struct lake *l, struct deid *d,
			    const struct profile *prof, const char *project,
			    struct mlk_error *e);
void objdeid_free(struct objdeid *od);

/* One record (a line without its '\n'): appended to out as it should be
 * written (with '\n').  MLK_PARTIAL with the reason (no value quoted)
 * when the record must be left out (nothing appended); MLK_SYSTEM when
 * the store cannot be written. */
enum mlk_status objdeid_record(struct objdeid *od, const char *line,
			       size_t n, struct buf *out, struct mlk_error *e);

/* Which patient each VCF/SAM sample belongs to (samplemap.h): the sample
 * becomes that patient's token; samples the map does not list, and every
 * sample without a map, become the token of their own name.  m is
 * borrowed: it must outlive od (several instances may share it). */
void objdeid_set_samples(struct objdeid *od, const struct samplemap *m);

/* Publish the new objects of the records handled so far (fsynced,
 * read-only, renamed into the store): call it before writing those
 * records out.  MLK_SYSTEM when the store cannot be written; the objects
 * are then discarded and the records must not be written. */
enum mlk_status objdeid_flush(struct objdeid *od, struct mlk_error *e);
/* Start syncing, in the background, the new objects stored since the last
 * call: objdeid_flush() then has less to wait for. */
void objdeid_sync_start(struct objdeid *od);
/* The same for several instances (threads) at once: one publish, so each
 * directory of the store is synced once, not once per instance. */
enum mlk_status objdeid_flush_many(struct objdeid *const *ods, size_t n,
				   struct mlk_error *e);

/* New objects waiting for objdeid_flush(). */
size_t objdeid_pending(const struct objdeid *od);

/* Objects written so far (new or already stored). */
unsigned long long objdeid_count(const struct objdeid *od);
/* Objects left out with a reason record in quarantine/_deid/. */
unsigned long long objdeid_quarantined(const struct objdeid *od);

/* Index records (tbi, bai, crai, csi) left out on purpose so far. */
unsigned long long objdeid_superseded(const struct objdeid *od);

#endif
