/*
 * samplemap — which patient each sequencing sample belongs to, for
 * de-identifying genomics objects (mlk-deid --sample-map, gendeid.h's
 * patient_of): a sample's column or read group then carries the token of
 * its patient, the token that patient's EHR records carry.
 *
 * The file is CSV, or TSV when its header line holds a tab, with a header
 * naming a sample column (sample, sample_id, sample_name; any case) and a
 * patient column (patient, patient_id, subject_id, person_id); other
 * columns are ignored.  A sample listed twice with two patients is an
 * error; twice with the same patient is not.  Empty sample or patient
 * cells are errors.  Messages name the file and line, never a value.
 *
 * Memory: the whole map is held (about the file's size), sorted, looked up
 * by binary search.  Sample names and patient ids are identifiers: they
 * are wiped when the map is freed.
 *
 * Ownership: samplemap_load() gives a map that samplemap_free() releases;
 * samplemap_patient()'s answer lives as long as the map.
 */
#ifndef MLK_SAMPLEMAP_H
#define MLK_SAMPLEMAP_H

#include "status.h"

struct samplemap;

enum mlk_status samplemap_load(const char *path, struct samplemap **out,
			       struct mlk_error *e);
/* The patient id of a sample, or NULL when the map does not list it. */
const char *samplemap_patient(const struct samplemap *m, const char *sample);
/* Number of samples listed. */
size_t samplemap_size(const struct samplemap *m);
void samplemap_free(struct samplemap *m);

#endif
