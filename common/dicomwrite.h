/*
 * dicomwrite — a de-identified DICOM Part 10 file written from the element
 * stream of common/dicom.c, under the actions of common/dicomdeid.c.
 *
 * Two walks over the input: the first reads the few attributes decisions
 * need before the data set is written (PatientID for the token and date
 * shift, which comes after PatientName; the SOP class and instance for the
 * file meta group; Modality and BurnedInAnnotation for the burned-in rule)
 * and stops after (0028,0301); the second writes.
 *
 * The output keeps the transfer syntax (implicit VR little endian,
 * explicit VR little or big endian, and every encapsulated syntax); the
 * file meta group is rebuilt: group length, Media Storage SOP Instance
 * UID = the new SOP Instance UID, mlk's implementation class UID and
 * version name, and nothing else from the original (source AE titles and
 * private meta information can identify a site).  Sequences and items are
 * written with undefined lengths and delimiters (so nothing is buffered),
 * values padded to even length per VR.  Pixel data, encapsulated fragments
 * and other bulk values are copied byte for byte from the input by offset
 * (pread), never held in memory.  Patient Identity Removed (0012,0062) =
 * YES, De-identification Method (0012,0063), De-identification Method Code
 * Sequence (0012,0064) and Longitudinal Temporal Information Modified
 * (0028,0303) are inserted in tag order (replacing any the input had).
 *
 * Deflated Explicit VR Little Endian is written deflated again (raw
 * deflate, zlib); its values arrive in memory (offsets count in the
 * inflated stream, so nothing can be copied by offset), which bounds them
 * by DICOM_MAX_VALUE.  Not handled (MLK_PARTIAL, the caller quarantines):
 * pixel data in a deflated data set, and input common/dicom.c cannot
 * read.
 *
 * Errors: MLK_DENIED when the burned-in annotation rule refuses the object
 * (dd_burned_in(); message says why), MLK_PARTIAL for input that is not
 * usable DICOM (message names the byte offset), MLK_SYSTEM for I/O.  On
 * any error the output holds garbage: write to a temp file and rename only
 * on MLK_OK (dicomwrite_file() does).
 *
 * Ownership: the caller owns the descriptors and the struct dicomdeid,
 * whose patient (dd_set_patient()) is set for the file being written.
 */
#ifndef MLK_DICOMWRITE_H
#define MLK_DICOMWRITE_H

#include <stddef.h>

#include "crypto.h"
#include "dicomdeid.h"
#include "status.h"

struct dicomwrite_params {
	struct dicomdeid *dd;
	/* The per-patient date shift in days of a patient id (the one EHR
	 * records get); NULL: no shift (0). */
	int (*shift_days)(void *ctx, const char *pid, size_t n);
	void *ctx;
};

/* What the record of the new object needs (never PHI). */
struct dicomwrite_result {
	char study_uid[DD_UID_MAX + 1];    /* the new UIDs, "" when absent */
	char series_uid[DD_UID_MAX + 1];
	char sop_uid[DD_UID_MAX + 1];
	char sop_class[DD_UID_MAX + 1];
	char modality[17];
	unsigned long long bytes;          /* size of the file written */
	char sha256[SHA256_HEX];           /* of its bytes, as written */
};

/* De-identify the file open on in_fd (name for messages) into out_fd,
 * from offset 0 of both. */
enum mlk_status dicomwrite_fd(const struct dicomwrite_params *p, int in_fd,
			      const char *name, int out_fd,
			      struct dicomwrite_result *res,
			      struct mlk_error *e);

/*
 * dicomwrite_fd() in two steps, so that no output is made for an object
 * that is refused: dicomwrite_begin() reads what decisions need (the
 * burned-in rule: MLK_DENIED; unreadable input: MLK_PARTIAL) and sets
 * the patient; dicomwrite_end() writes the file and frees dw (as does
 * dicomwrite_abort(), when nothing is to be written).  in_fd and p must
 * stay valid until then.
 */
struct dicomwrite;
enum mlk_status dicomwrite_begin(const struct dicomwrite_params *p,
				 int in_fd, const char *name,
				 struct dicomwrite **dw, struct mlk_error *e);
enum mlk_status dicomwrite_end(struct dicomwrite *dw, int out_fd,
			       struct dicomwrite_result *res,
			       struct mlk_error *e);
void dicomwrite_abort(struct dicomwrite *dw);

/* The same from path in to path out, atomically (temp beside out, fsync,
 * rename, fsync dir); out is created with mode. */
enum mlk_status dicomwrite_file(const struct dicomwrite_params *p,
				const char *in, const char *out,
				unsigned mode, struct dicomwrite_result *res,
				struct mlk_error *e);

#endif
