/*
 * samplemap-test — unit checks for common/samplemap.c: CSV and TSV maps,
 * header names in any case, extra columns, lookups, duplicates (the same
 * patient twice is fine, another patient is an error), empty cells, a
 * missing header, and that no message quotes a value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsio.h"
#include "samplemap.h"
#include "tap.h"
#include "banned.h"

#define DIR "build/unit/samplemap"

static enum mlk_status load(const char *text, struct samplemap **m,
			    struct mlk_error *e)
{
	struct mlk_error we = MLK_ERROR_INIT;
	fsio_write_atomic(DIR "/map", text, strlen(text), 0644, &we);
	*e = (struct mlk_error)MLK_ERROR_INIT;
	return samplemap_load(DIR "/map", m, e);
}

int main(void)
{
	struct mlk_error e = MLK_ERROR_INIT;
	fsio_mkdirs(DIR, 0755, &e);
	struct samplemap *m = NULL;

	check(load("Sample_ID,site,Patient_ID\nNA12891,x,p-1\nNA12892,y,p-2\n"
		   "NA12891,z,p-1\n", &m, &e) == MLK_OK,
	      "CSV with extra columns and a repeated row loads");
	check(m && samplemap_size(m) == 2, "two samples");
	check(m && !strcmp(samplemap_patient(m, "NA12891"), "p-1") &&
	      !strcmp(samplemap_patient(m, "NA12892"), "p-2") &&
	      !samplemap_patient(m, "NA12893") &&
	      !samplemap_patient(m, "NA1289"), "lookups");
	samplemap_free(m);

	check(load("sample\tpatient\nS 1\tP,1\n", &m, &e) == MLK_OK &&
	      !strcmp(samplemap_patient(m, "S 1"), "P,1"),
	      "TSV: a tab in the header decides; commas are data");
	samplemap_free(m);

	check(load("\"sample\",\"subject_id\"\n\"a\"\"b\",\"c\"\n", &m, &e) ==
	      MLK_OK && !strcmp(samplemap_patient(m, "a\"b"), "c"),
	      "quoted CSV");
	samplemap_free(m);

	check(load("sample,patient\nSECRET1,PX\nSECRET1,PY\n", &m, &e) ==
	      MLK_USAGE && !m && e.line == 3 && !strstr(e.msg, "SECRET") &&
	      !strstr(e.msg, "PX") && !strstr(e.msg, "PY"),
	      "a sample with two patients: an error naming lines, not values");
	check(load("sample,patient\nSECRET1,\n", &m, &e) == MLK_USAGE &&
	      e.line == 2 && !strstr(e.msg, "SECRET"),
	      "an empty patient cell: an error");
	check(load("name,id\nSECRET1,PX\n", &m, &e) == MLK_USAGE &&
	      e.line == 1, "no sample/patient header: an error");
	check(load("", &m, &e) == MLK_USAGE, "an empty file: an error");
	check(samplemap_load(DIR "/absent", &m, &e) == MLK_SYSTEM,
	      "a missing file: a system error");
	check(load("sample,patient\n\"open,PX\n", &m, &e) == MLK_USAGE &&
	      !strstr(e.msg, "open"), "broken CSV: an error");
	(void)mem_read;
	return tap_done();
}
