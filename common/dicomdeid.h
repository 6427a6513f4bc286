/*
 * dicomdeid — the action engine of DICOM de-identification: PS3.15 Annex E
 * (Basic Application Level Confidentiality Profile, Table E.1-1, and its
 * options) decided per attribute, and the new values it calls for.
 *
 * The table is data: profiles/dicom-e1-1.tsv, compiled into dd_e11_rows[]
 * by scripts/embed-e1-1.  dd_action() says what happens to one attribute
 * (tag, VR, depth in sequences); dd_value() makes the replacement value.
 * A writer walks the data set, asks dd_action() for every element at every
 * depth, and copies, drops, empties, replaces or descends.
 *
 * Decisions (the standard leaves them to the implementation):
 * - Combined codes resolve conservatively: X/Z, X/D and X/Z/D to X, Z/D to
 *   Z, X/Z/U* to X; except the attributes in dd_types[] (dicomdeid.c), the
 *   short list of Type 1 and Type 2 attributes of the IODs mlk handles,
 *   which get D (Type 1) or Z (Type 2) so that the output still conforms.
 * - C (clean) of a text value (AE, LO, SH, ST, LT, UT, UC) is the free-
 *   text scrubber of the EHR records (common/scrub.c, every detector:
 *   dates, phone numbers, e-mail, SSN, long numbers, URLs, addresses,
 *   names after titles, ages over 89) with the object's own identifiers
 *   as known values: every PN value at any depth (each name component
 *   too), Patient ID, Other Patient IDs, Accession Number, Institution
 *   Name and Address, Station Name, Device Serial Number, Study ID,
 *   procedure and step IDs, the patient's address and telephone
 *   numbers (a department name like "MRI" would cost more than it
 *   protects) (dd_note() collects them; dd_clear_known() forgets them).  A
 *   cleaned value longer than its VR allows is cut (at a character
 *   boundary).  C of a sequence keeps it and cleans its items; C of any
 *   other VR (codes, numbers) keeps the value.  Clean Descriptors, Clean
 *   Structured Content (free text inside Content Sequence cleaned instead
 *   of dummied), Clean Graphics (text of Graphic Annotation Sequence
 *   cleaned; overlays and curves are still removed whole: mlk cannot
 *   clean pixels) and the C of Retain Patient Characteristics use it.
 *   Retain Safe Private is refused: it needs the list of safe private
 *   attributes of PS3.15 Table E.3.10-1, which mlk does not carry; name
 *   the private tags to keep instead (dd_params.keep_private).  The C of
 *   Retain Longitudinal Temporal Information with Modified Dates is the
 *   date shift (DD_SHIFT for DA and DT; TM and the timezone offset are
 *   kept).
 * - Patient's Name and Patient ID become the patient's token (DD_TOKEN),
 *   the token the EHR records of that patient get, so objects and records
 *   link inside a project.
 * - Beyond the table (mlk's own rules, never less removing): every
 *   private attribute is removed unless on the keep list (with its private
 *   creator); the whole of every overlay group 60xx (an overlay plane
 *   without its data is invalid) and curve group 50xx is removed; group
 *   lengths (gggg,0000) outside the file meta group are removed; an
 *   unlisted DA or DT is removed (or kept/shifted under the date options)
 *   and an unlisted PN is removed, because identifiers hide there too.
 * - A sequence whose action is K, D, U or C is kept and its items are
 *   de-identified by the same rules (DD_DESCEND); Z keeps it empty.
 * - Inside Content Sequence (0040,A730) and Graphic Annotation Sequence
 *   (0070,0001), at any depth, what the rules above would remove from
 *   outside the table, and all free text (UT, LT, ST, UC), gets a dummy
 *   value instead (cleaned under Clean Structured Content or Clean
 *   Graphics): SR content items need their value (Type 1), and text
 *   annotations are free text.
 * - New UIDs are "2.25." and the decimal of a UUID (ITU-T X.667): the
 *   128 bits of the token of "uid:" + old UID, which is the first 128 bits
 *   of HMAC-SHA256(project key, ...) with the UUID version and variant
 *   bits set.  Same UID, key and project: same new UID, in every file and
 *   every run.
 *
 * Tokens come from the caller (dd_params.token: mlk-deid passes
 * deid_token()), so this module holds no key.  The per-patient date shift
 * comes from the caller too (dd_set_patient()), the same offset the EHR
 * records of that patient get.  An object without a patient id has no
 * offset: for it, Modified Dates is off (its dates go as in the basic
 * profile, and neither 113107 nor MODIFIED is recorded).
 *
 * Ownership: struct dicomdeid is made by dd_new() and freed by dd_free();
 * it copies the keep list and borrows nothing else.  It holds the current
 * patient's token, never the patient id.  Not thread-safe; one per thread.
 */
#ifndef MLK_DICOMDEID_H
#define MLK_DICOMDEID_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "status.h"

/* One row of Table E.1-1 (generated: see scripts/embed-e1-1). */
struct dd_row {
	uint32_t tag, mask;     /* matches when (t & mask) == tag */
	const char *basic;      /* "Z", "X/Z/D", "X/Z/U*" ... */
	const char *iod;        /* "Y": in a standard composite IOD */
	const char *opt;        /* DD_NOPT actions, '-' where none */
	const char *name;
};
extern const struct dd_row dd_e11_rows[];
extern const size_t dd_e11_nexact, dd_e11_nrows;

/* The options, in the table's column order. */
enum dd_option {
	DD_OPT_FULLDATES = 1 << 0,  /* 113106 */
	DD_OPT_MODDATES = 1 << 1,   /* 113107 */
	DD_OPT_PATCHARS = 1 << 2,   /* 113108 */
	DD_OPT_DEVID = 1 << 3,      /* 113109 */
	DD_OPT_INSTID = 1 << 4,     /* 113112 */
	DD_OPT_UIDS = 1 << 5,       /* 113110 */
	DD_OPT_CLEANDESC = 1 << 6,  /* 113105 */
	DD_OPT_CLEANSTRUCT = 1 << 7,/* 113104 */
	DD_OPT_CLEANGRAPH = 1 << 8, /* 113103 */
	DD_OPT_SAFEPRIV = 1 << 9,   /* 113111 */
};
#define DD_NOPT 10

enum dd_action {
	DD_KEEP = 'K',
	DD_REMOVE = 'X',
	DD_ZERO = 'Z',      /* present, zero length (a sequence: no items) */
	DD_DUMMY = 'D',
	DD_UID = 'U',       /* every UID value replaced */
	DD_SHIFT = 'S',     /* DA/DT moved by the patient's offset */
	DD_TOKEN = 'T',     /* the patient's token */
	DD_DESCEND = 'Q',   /* a sequence kept; its items de-identified */
	DD_CLEAN = 'C',     /* free text cleaned of identifiers */
};

#define DD_TOKEN_LEN 36     /* a token is a UUID: DEID_TOKEN_LEN */
#define DD_UID_MAX 64

struct dd_params {
	unsigned options;               /* enum dd_option bits */
	const uint32_t *keep_private;   /* private tags to keep, or NULL */
	size_t nkeep_private;
	int accept_burned_in;           /* the profile accepts burned-in text */
	/* The project's token of a value (mlk-deid: deid_token()). */
	void (*token)(void *ctx, const char *v, size_t n,
		      char out[DD_TOKEN_LEN + 1]);
	void *token_ctx;
};

/* Option names as profiles write them: "full-dates", "modified-dates",
 * "patient-characteristics", "device-identity", "institution-identity",
 * "uids", "clean-descriptors", "clean-structured-content",
 * "clean-graphics", "safe-private".  0 when unknown. */
unsigned dd_option_parse(const char *name);
const char *dd_option_name(unsigned bit);
/* Whether mlk can honour the option (all but safe-private). */
int dd_option_supported(unsigned bit);

/* The table row of a tag (exact first, then masks), or NULL. */
const struct dd_row *dd_lookup(uint32_t tag);

/* MLK_USAGE (message names the option) for options that contradict each
 * other or that mlk cannot honour yet, or a missing token function. */
struct dicomdeid *dd_new(const struct dd_params *p, struct mlk_error *e);
void dd_free(struct dicomdeid *dd);

/* The object's patient: pid is the DICOM PatientID (or the id the caller
 * maps it to); its token replaces PatientID and PatientName.  n == 0: no
 * patient, both become empty.  shift_days is the patient's date offset. */
void dd_set_patient(struct dicomdeid *dd, const char *pid, size_t n,
		    int shift_days);

/* Known identifiers for cleaning: dd_clear_known() before an object,
 * then dd_note() for every element of it (any depth, before writing);
 * dd_note() keeps what identifies (see above).  dd_cleans() says whether
 * any option cleans, i.e. whether the notes are needed at all. */
int dd_cleans(const struct dicomdeid *dd);
void dd_clear_known(struct dicomdeid *dd);
void dd_note(struct dicomdeid *dd, uint32_t tag, const char vr[2],
	     const char *v, size_t n);

/* What happens to the element tag of VR vr (two letters) at sequence
 * depth depth (0: the top-level data set); parents holds the tags of the
 * depth enclosing sequences, outermost first (NULL when depth is 0). */
enum dd_action dd_action(const struct dicomdeid *dd, uint32_t tag,
			 const char vr[2], const uint32_t *parents, int depth);

/* The new value of an element for action a (DD_ZERO: empty; DD_KEEP: a
 * copy) into out (appended, not padded: the writer pads to even length).
 * Multi-valued UI, DA and DT values are handled value by value.  A date
 * that cannot be read is left out (the value becomes empty), never kept. */
void dd_value(struct dicomdeid *dd, enum dd_action a, const char vr[2],
	      const char *in, size_t n, struct buf *out);

/* The new UID of uid (trailing NUL or space padding ignored): "2.25." and
 * up to 39 digits; returns its length. */
size_t dd_uid(struct dicomdeid *dd, const char *uid, size_t n,
	      char out[DD_UID_MAX + 1]);

/* Burned-in annotation: MLK_DENIED with the reason when BurnedInAnnotation
 * (0028,0301) is YES, or is absent (burned == NULL) for modality US, SC,
 * OT or XC or a Secondary Capture SOP class, and the profile does not
 * accept it; MLK_OK otherwise.  Arguments are the elements' values
 * (padding ignored), NULL when absent. */
enum mlk_status dd_burned_in(const struct dicomdeid *dd, const char *modality,
			     const char *sop_class, const char *burned,
			     struct mlk_error *e);

/* De-identification Method Code Sequence (0012,0064) items, CID 7050,
 * coding scheme "DCM": 113100 first, then one per option selected. */
struct dd_code {
	const char *value, *meaning;
};
size_t dd_methods(const struct dicomdeid *dd, struct dd_code out[DD_NOPT + 1]);
/* Longitudinal Temporal Information Modified (0028,0303): "UNMODIFIED",
 * "MODIFIED" or "REMOVED". */
const char *dd_temporal(const struct dicomdeid *dd);

#endif
