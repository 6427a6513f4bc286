/*
 * dicomwrite-test — the DICOM writer of common/dicomwrite.c on the real
 * sample files in ../shared/data/dicom (read in place), judged by tools
 * nobody here wrote: dcmtk's dcmdump reads every output, pydicom reads
 * every output and finds the identifiers gone or tokenised, the pixel
 * data bytes equal, every UID new, the file meta group right; dicom3tools'
 * dciodvfy reports no error on an output that it did not report on its
 * input (deflated files are inflated with dcmconv first, which dciodvfy
 * cannot do).  Also: two runs give byte-identical files, the same study in
 * two files gets the same new Study Instance UID, the modified-dates
 * option moves dates by the patient's offset, and an ultrasound without
 * BurnedInAnnotation is refused unless the profile accepts it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deid.h"
#include "dicomdeid.h"
#include "dicomwrite.h"
#include "fsio.h"
#include "profile.h"
#include "tap.h"
#include "banned.h"

#define DATA "../shared/data/dicom"
#define OUT "build/unit/dicomwrite"

static const char *const samples[] = {
	"CT_CT0012.fragmented_no_bot_jpeg_baseline.51.dcm",
	"CT_CT1_UNC.explicit_little_endian.dcm",
	"ECG_wave_dfl.dcm",
	"MR_deid_example.dcm",
	"MR_deid_example_cleaned.dcm",
	"MR_tcia_prostate_mri_3.dcm",
	"PT_tcia_acrin_flt_breast_1.dcm",
	"SR_report_dfl.dcm",
	"US_IM00001.fragmented_no_bot_jpeg_baseline.50.dcm",
};
#define NSAMPLES (sizeof samples / sizeof *samples)
#define US_SAMPLE 8

static struct deid *deid;

static void tok(void *ctx, const char *v, size_t n,
		char out[DD_TOKEN_LEN + 1])
{
	deid_token(ctx, v, n, out);
}

static int shift(void *ctx, const char *pid, size_t n)
{
	(void)ctx;
	(void)pid;
	(void)n;
	return -30;
}

static struct dicomdeid *make(unsigned options, int accept)
{
	struct dd_params p = { 0 };
	struct mlk_error e = MLK_ERROR_INIT;
	p.options = options;
	p.token = tok;
	p.token_ctx = deid;
	p.accept_burned_in = accept;
	struct dicomdeid *dd = dd_new(&p, &e);
	if (!dd) {
		fprintf(stderr, "dd_new: %s\n", e.msg);
		exit(1);
	}
	return dd;
}

static enum mlk_status run(struct dicomdeid *dd, const char *in,
			   const char *dir, const char *name,
			   struct dicomwrite_result *r, struct mlk_error *e)
{
	char out[1024];
	snprintf(out, sizeof out, "%s/%s", dir, name);
	struct dicomwrite_params p = { dd, shift, NULL };
	return dicomwrite_file(&p, in, out, 0644, r, e);
}

static int same_file(const char *a, const char *b)
{
	char *x, *y;
	size_t nx, ny;
	struct mlk_error e = MLK_ERROR_INIT;
	if (fsio_read_file(a, &x, &nx, &e) != MLK_OK)
		return 0;
	if (fsio_read_file(b, &y, &ny, &e) != MLK_OK) {
		free(x);
		return 0;
	}
	int same = nx == ny && !memcmp(x, y, nx);
	free(x);
	free(y);
	return same;
}

static const char check_py[] =
"import sys, glob, os, hashlib, pydicom\n"
"inp, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]\n"
"def uids(ds, acc, skip=False):\n"
"    for el in ds.iterall():\n"
"        if skip and el.tag in (0x0008010c, 0x0008010d, 0x00080118): continue\n"
"        if el.VR == 'UI' and el.value:\n"
"            vs = el.value if isinstance(el.value, (list, pydicom.multival.MultiValue)) else [el.value]\n"
"            acc.extend(str(v) for v in vs)\n"
"    return acc\n"
"for f in sorted(glob.glob(out + '/*.dcm')):\n"
"    b = os.path.basename(f)\n"
"    bad = []\n"
"    try:\n"
"        o = pydicom.dcmread(f); i = pydicom.dcmread(os.path.join(inp, b))\n"
"    except Exception as x:\n"
"        print('FAIL', b, 'unreadable'); continue\n"
"    if 'PixelData' in i and o.PixelData != i.PixelData: bad.append('pixels')\n"
"    if 'WaveformSequence' in i and o.WaveformSequence[0].WaveformData != i.WaveformSequence[0].WaveformData: bad.append('waveform')\n"
"    pn, pid = str(o.get('PatientName', '')), str(o.get('PatientID', ''))\n"
"    if pn != pid or len(pid) not in (0, 36): bad.append('patient token')\n"
"    if str(i.get('PatientID', '')).strip() and not pid: bad.append('no token')\n"
"    if o.get('PatientBirthDate', ''): bad.append('birth date')\n"
"    if 'InstitutionName' in o: bad.append('institution')\n"
"    if o.get('ReferringPhysicianName', ''): bad.append('referring')\n"
"    if o.get('AccessionNumber', ''): bad.append('accession')\n"
"    if o.get('PatientIdentityRemoved') != 'YES': bad.append('identity removed')\n"
"    codes = [c.CodeValue for c in o.get('DeidentificationMethodCodeSequence', [])]\n"
"    if codes[:1] != ['113100']: bad.append('method codes')\n"
"    if o.file_meta.MediaStorageSOPInstanceUID != o.SOPInstanceUID: bad.append('meta sop uid')\n"
"    if o.file_meta.TransferSyntaxUID != i.file_meta.TransferSyntaxUID: bad.append('syntax')\n"
"    old = set(u for u in uids(i, []) if not u.startswith('1.2.840.10008.'))\n"
"    for u in uids(o, [], True):\n"
"        if not (u.startswith('2.25.') or u.startswith('1.2.840.10008.')) or u in old:\n"
"            bad.append('uid kept'); break\n"
"    for el in o.iterall():\n"
"        if el.VR in ('DA', 'DT') and el.value and el.tag not in (0x00080106, 0x00080107):\n"
"            v = str(el.value)\n"
"            if mode == 'basic' and not v.startswith('1900'): bad.append('date ' + str(el.tag)); break\n"
"    if mode == 'moddates' and pid:\n"
"        import datetime\n"
"        for t in ('StudyDate', 'SeriesDate', 'ContentDate'):\n"
"            a, z = str(i.get(t, '')), str(o.get(t, ''))\n"
"            if len(a) == 8 and a.isdigit():\n"
"                d = (datetime.date(int(z[:4]), int(z[4:6]), int(z[6:])) - datetime.date(int(a[:4]), int(a[4:6]), int(a[6:]))).days if len(z) == 8 else None\n"
"                if d != -30: bad.append('shift ' + t)\n"
"    print('FAIL' if bad else 'ok', b, ' '.join(bad))\n";

static int tools_present(void)
{
	return system("command -v dcmdump >/dev/null && command -v dciodvfy "
		      ">/dev/null && command -v dcmconv >/dev/null && "
		      "/usr/bin/python3 -c 'import pydicom' 2>/dev/null") == 0;
}

static void pydicom_checks(const char *dir, const char *mode)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 -W ignore %s/check.py %s %s %s",
		 OUT, DATA, dir, mode);
	FILE *f = popen(cmd, "r");
	char line[1024];
	int n = 0;
	while (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		check(!strncmp(line, "ok ", 3), "pydicom (%s): %s", mode, line);
		n++;
	}
	int rc = f ? pclose(f) : -1;
	check(rc == 0 && n == (int)NSAMPLES - 1,
	      "pydicom (%s) read all %d outputs", mode, n);
}

static void tool_checks(void)
{
	char cmd[4096];
	for (size_t k = 0; k < 2 * NSAMPLES; k++) {
		size_t i = k % NSAMPLES;
		const char *sub = k < NSAMPLES ? "a" : "m";
		if (i == US_SAMPLE)
			continue;
		snprintf(cmd, sizeof cmd, "dcmdump -q %s/%s/%s >/dev/null 2>&1",
			 OUT, sub, samples[i]);
		check(system(cmd) == 0, "dcmdump reads %s/%s", sub, samples[i]);
		/* errors dciodvfy finds on the output but not on the input
		 * (values in <> dropped: new UIDs are not new errors) */
		int dfl = strstr(samples[i], "_dfl") != NULL;
		snprintf(cmd, sizeof cmd,
			 "set -e; d=%s/v; mkdir -p $d; in=%s/%s; out=%s/%s/%s; "
			 "if [ %d = 1 ]; then dcmconv +te $in $d/in.dcm; "
			 "dcmconv +te $out $d/out.dcm; in=$d/in.dcm; "
			 "out=$d/out.dcm; fi; "
			 "dciodvfy $in 2>&1 | grep '^Error' | sed 's/<[^>]*>//g' "
			 "| sort -u > $d/in.err || true; "
			 "dciodvfy $out 2>&1 | grep '^Error' | sed 's/<[^>]*>//g' "
			 "| sort -u > $d/out.err || true; "
			 "test -z \"$(comm -13 $d/in.err $d/out.err)\"",
			 OUT, DATA, samples[i], OUT, sub, samples[i], dfl);
		check(system(cmd) == 0, "dciodvfy: no new error on %s/%s",
		      sub, samples[i]);
	}
	pydicom_checks(OUT "/a", "basic");
	pydicom_checks(OUT "/m", "moddates");
}

int main(void)
{
	struct profile prof;
	struct mlk_error e = MLK_ERROR_INIT;
	if (access(DATA, R_OK) != 0) {
		check(0, "sample data in %s", DATA);
		return tap_done();
	}
	if (profile_load("research-pseudonymized", NULL, &prof, &e) != MLK_OK)
		return 1;
	uint8_t key[MLK_KEY_LEN];
	for (int i = 0; i < MLK_KEY_LEN; i++)
		key[i] = (uint8_t)(7 * i + 3);
	struct deid_params dp = { &prof, "imaging", 0, 2026, "k-test", 0, 0 };
	deid = deid_new(&dp, key, &e);
	fsio_remove_tree(OUT);
	const char *dirs[] = { OUT "/a", OUT "/b", OUT "/m", OUT "/acc" };
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
		fsio_mkdirs(dirs[i], 0755, &e);

	struct dicomdeid *a = make(0, 0), *b = make(0, 0);
	/* m: every option that changes values rather than keeping them */
	struct dicomdeid *m = make(DD_OPT_MODDATES | DD_OPT_CLEANDESC |
				   DD_OPT_CLEANSTRUCT | DD_OPT_CLEANGRAPH |
				   DD_OPT_PATCHARS, 0);
	for (size_t i = 0; i < NSAMPLES; i++) {
		char in[1024], pa[1024], pb[1024];
		snprintf(in, sizeof in, "%s/%s", DATA, samples[i]);
		struct dicomwrite_result ra, rb, rm;
		enum mlk_status sa = run(a, in, OUT "/a", samples[i], &ra, &e);
		if (i == US_SAMPLE) {
			snprintf(pa, sizeof pa, "%s/a/%s", OUT, samples[i]);
			check(sa == MLK_DENIED && strstr(e.msg, "burned-in") &&
			      access(pa, F_OK) != 0,
			      "US without BurnedInAnnotation refused, no file");
			continue;
		}
		check(sa == MLK_OK, "de-identified %s%s%s", samples[i],
		      sa ? ": " : "", sa ? e.msg : "");
		enum mlk_status sb = run(b, in, OUT "/b", samples[i], &rb, &e);
		snprintf(pa, sizeof pa, "%s/a/%s", OUT, samples[i]);
		snprintf(pb, sizeof pb, "%s/b/%s", OUT, samples[i]);
		check(sb == MLK_OK && same_file(pa, pb) &&
		      !strcmp(ra.study_uid, rb.study_uid),
		      "second run byte-identical: %s", samples[i]);
		check(!strncmp(ra.study_uid, "2.25.", 5) &&
		      !strncmp(ra.sop_uid, "2.25.", 5) && ra.bytes > 132,
		      "result: new study and instance UIDs, size");
		/* the hash the writer kept of what it wrote is the file's */
		char fh[SHA256_HEX];
		unsigned long long fsz = 0;
		check(sha256_file(pa, fh, &fsz, &e) == MLK_OK &&
		      !strcmp(fh, ra.sha256) && fsz == ra.bytes,
		      "result: SHA-256 and size of the bytes written: %s",
		      samples[i]);
		enum mlk_status sm = run(m, in, OUT "/m", samples[i], &rm, &e);
		check(sm == MLK_OK, "modified dates: %s", samples[i]);
	}

	struct dicomdeid *acc = make(0, 1);
	char in[1024];
	snprintf(in, sizeof in, "%s/%s", DATA, samples[US_SAMPLE]);
	struct dicomwrite_result r1, r2;
	check(run(acc, in, OUT "/acc", samples[US_SAMPLE], &r1, &e) == MLK_OK,
	      "US accepted when the profile accepts burned-in text");

	/* the same study in another file: a copy with another SOP Instance
	 * UID, made by dcmodify */
	int have_tools = tools_present();
	if (have_tools) {
		char cmd[2048];
		snprintf(cmd, sizeof cmd, "cp %s/%s %s/copy.dcm && chmod u+w "
			 "%s/copy.dcm && dcmodify -nb -m '(0008,0018)=1.2.3.4.5'"
			 " %s/copy.dcm >/dev/null 2>&1", DATA, samples[1], OUT,
			 OUT, OUT);
		int ok = system(cmd) == 0;
		snprintf(in, sizeof in, "%s/%s", DATA, samples[1]);
		ok = ok && run(a, in, OUT "/acc", "one.dcm", &r1, &e) == MLK_OK;
		ok = ok && run(a, OUT "/copy.dcm", OUT "/acc", "two.dcm", &r2,
			       &e) == MLK_OK;
		check(ok && !strcmp(r1.study_uid, r2.study_uid) &&
		      !strcmp(r1.series_uid, r2.series_uid) &&
		      strcmp(r1.sop_uid, r2.sop_uid),
		      "same study in two files: same new study and series "
		      "UIDs, different instance UIDs");
		unlink(OUT "/copy.dcm");

		fsio_write_atomic(OUT "/check.py", check_py, strlen(check_py),
				  0644, &e);
		tool_checks();
	} else {
		check(0, "dcmdump, dciodvfy, dcmconv and pydicom installed "
		      "(scripts/setup)");
	}

	dd_free(a);
	dd_free(b);
	dd_free(m);
	dd_free(acc);
	deid_free(deid);
	profile_release(&prof);
	(void)mem_read;   /* tap.h's reader: not needed here */
	return tap_done();
}
