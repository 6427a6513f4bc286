/*
 * profile — de-identification profiles (mlk-profile(5)): loading,
 * resolving `extends`, compiling rules, and the profile's hash.
 *
 * A profile is YAML: a name, options, and rules.  A rule addresses fields
 * through one or more selectors and says what to do with them (a method
 * and its parameters).  Selectors compile to path patterns over the JSON
 * keys of a record, with arrays transparent:
 *   fhir:  "Patient.birthDate", "*.identifier", "**.address.city", or a
 *          datatype found by shape: "HumanName", "Reference.display"
 *   field: flat (CSV/NDJSON) fields by name or glob, case-insensitive,
 *          dotted for nested objects: "first_name", "*zip*", "addr.*"
 *   hl7:   HL7 v2 fields: "PID-5", "PID-11.5", "NK1-*", "Z*-*"
 *   value: any string value of a kind: date, email, ssn, phone
 * The most specific matching rule wins (literal segments count 10, glob
 * segments 1, "**" 0; datatype rules 5 plus 10 per literal segment after
 * the type; value rules 3); among equally specific rules, the later one.
 * A parent profile's rules come before its child's, so a child overrides.
 *
 * Built-in profiles and the Safe Harbor ZIP3 table are compiled in from
 * profiles/ (see profile_builtin()).  A name is looked up as a file when
 * it holds a '/' or ends in .yaml, else in the lake's profiles/ folder,
 * else among the built-ins.
 *
 * Ownership: struct profile is caller-owned (profile_load/profile_release)
 * and owns everything it points to.
 */
#ifndef MLK_PROFILE_H
#define MLK_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "lake.h"
#include "status.h"

enum dmethod {
	DM_DROP = 0,     /* no rule: dropped (fail closed), and reported */
	DM_KEEP,
	DM_REDACT,
	DM_MASK,
	DM_PSEUDO,
	DM_ENCRYPT,
	DM_DATESHIFT,
	DM_GENERALIZE,
	DM_SUBST,
	DM_PERTURB,
	DM_SCRUB,
};

enum gen_to { GEN_YEAR = 1, GEN_MONTH, GEN_ZIP3, GEN_AGE, GEN_AGE_BAND,
	      GEN_BUCKET };

enum sel_kind { SEL_FHIR = 1, SEL_FIELD, SEL_HL7, SEL_VALUE };

/* Datatypes recognised by shape in FHIR resources. */
enum ftype { FT_NONE = 0, FT_HUMANNAME, FT_ADDRESS, FT_CONTACTPOINT,
	     FT_IDENTIFIER, FT_REFERENCE, FT_NARRATIVE, FT_ATTACHMENT,
	     FT_ANNOTATION, FT_EXTENSION };

enum vkind { VK_DATE = 1, VK_EMAIL, VK_SSN, VK_PHONE };

struct prule {
	enum sel_kind kind;
	char **seg;            /* pattern segments: literal, glob, "**" */
	size_t nseg;
	int ftype;             /* enum ftype for datatype rules */
	int vkind;             /* enum vkind for value rules */
	int score;
	char *text;            /* the selector as written, for messages */
	/* method and parameters */
	enum dmethod method;
	enum gen_to to;
	double width;          /* generalize bucket/age_band width */
	int max_age;           /* generalize year: fold older into max+1 */
	int keep_first, keep_last;
	char mask_char;
	char *with;            /* substitute */
	double noise, relative;
	int precision;         /* perturb: decimals, -1 as the input */
};

struct profile {
	char *name;
	char sha256[SHA256_HEX];   /* over the whole extends chain */
	int pass_through;          /* unnamed fields kept, not dropped */
	int shift_days;            /* dateshift: offsets in [-d, d], not 0 */
	int keep_source_path;
	char **patient_fields;     /* flat fields naming the patient */
	size_t npatient_fields;
	struct prule *rules;
	size_t nrules;
	/* DICOM objects (the "dicom:" mapping): PS3.15 options (enum
	 * dd_option bits of dicomdeid.h), whether burned-in annotation is
	 * accepted, and private tags kept (gggg,eeee as 0xggggeeee). */
	unsigned dicom_options;
	int dicom_accept_burned_in;
	uint32_t *dicom_keep_private;
	size_t ndicom_keep_private;
	unsigned char zip3_restricted[1000];
	char *zip3_source;         /* the data file's source line */
};

enum mlk_status profile_load(const char *name, const struct lake *l,
			     struct profile *p, struct mlk_error *e);
void profile_release(struct profile *p);

/* A built-in profile's (or data file's) YAML text, or NULL. */
const char *profile_builtin(const char *name, size_t *len);
/* NULL-terminated list of the built-in profile names. */
const char *const *profile_builtin_names(void);

/* The profile's resolved YAML chain, as loaded (for --show-profile). */
enum mlk_status profile_text(const char *name, const struct lake *l,
			     struct buf *out, struct mlk_error *e);

const char *dmethod_name(enum dmethod m);

#endif
