/* objdeid — see objdeid.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "dicomdeid.h"
#include "dicomwrite.h"
#include "fsio.h"
#include "gendeid.h"
#include "object.h"
#include "objdeid.h"
#include "record.h"
#include "xalloc.h"
#include "banned.h"

struct objdeid {
	const struct lake *l;
	struct deid *d;
	struct dicomdeid *dd;
	struct rec r;
	unsigned long long count;
	unsigned long long superseded;
};

static void tok(void *ctx, const char *v, size_t n,
		char out[DD_TOKEN_LEN + 1])
{
	deid_token(ctx, v, n, out);
}

struct objdeid *objdeid_new(const struct lake *l, struct deid *d,
			    struct mlk_error *e)
{
	struct dd_params p;
	memset(&p, 0, sizeof p);
	p.token = tok;
	p.token_ctx = d;
	struct dicomdeid *dd = dd_new(&p, e);
	if (!dd)
		return NULL;
	struct objdeid *od = xcalloc(1, sizeof *od);
	od->l = l;
	od->d = d;
	od->dd = dd;
	rec_init(&od->r);
	return od;
}

void objdeid_free(struct objdeid *od)
{
	if (!od)
		return;
	dd_free(od->dd);
	rec_release(&od->r);
	free(od);
}

unsigned long long objdeid_count(const struct objdeid *od)
{
	return od->count;
}

unsigned long long objdeid_superseded(const struct objdeid *od)
{
	return od->superseded;
}

/* Store the bytes open on fd as an object; its name into hex. */
static enum mlk_status store(struct objdeid *od, int fd, const char *src,
			     char hex[SHA256_HEX], struct mlk_error *e)
{
	struct object_info info;
	memset(&info, 0, sizeof info);
	info.fd = -1;
	if (lseek(fd, 0, SEEK_SET) != 0)
		return mlk_error_errno(e, src, "cannot rewind");
	enum mlk_status st = object_put_fd(od->l, fd, src, &info, e);
	if (st == MLK_OK && info.tmp)
		st = object_publish(od->l, &info, e);
	else if (st != MLK_OK && info.tmp)
		object_discard(&info);
	if (st == MLK_OK)
		memcpy(hex, info.sha256, SHA256_HEX);
	free(info.tmp);
	return st;
}

static enum mlk_status dicom_object(struct objdeid *od, const char *in,
				    const char *name, char hex[SHA256_HEX],
				    struct mlk_error *e)
{
	int ifd = open(in, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		return mlk_error_set(e, MLK_PARTIAL, name, 0, "object not in "
				     "the store");
	FILE *t = tmpfile();
	if (!t) {
		close(ifd);
		return mlk_error_errno(e, name, "cannot make a temporary file");
	}
	struct dicomwrite_params wp = { od->dd, NULL, NULL };
	enum mlk_status st = dicomwrite_fd(&wp, ifd, name, fileno(t), NULL, e);
	close(ifd);
	if (st == MLK_OK)
		st = store(od, fileno(t), name, hex, e);
	fclose(t);
	return st;
}

static void gen_tok(void *ctx, const char *v, size_t n,
		    char out[GENDEID_TOKEN_LEN + 1])
{
	deid_token(ctx, v, n, out);
}

/*
 * The de-identified copy and, when one fits it (gendeid_index()), its
 * index: both stored; ihex is left empty when there is no index.
 */
static enum mlk_status genomics_object(struct objdeid *od, const char *in,
				       const char *name, char hex[SHA256_HEX],
				       char ihex[SHA256_HEX],
				       struct mlk_error *e)
{
	ihex[0] = '\0';
	if (access(in, R_OK) != 0)
		return mlk_error_set(e, MLK_PARTIAL, name, 0, "object not in "
				     "the store");
	char dir[] = "/tmp/mlk-objdeid.XXXXXX";
	if (!mkdtemp(dir))
		return mlk_error_errno(e, name, "cannot make a temporary "
				       "folder");
	char *out = xasprintf("%s/object", dir);
	char *idx = NULL;
	struct gendeid_params gp = { NULL, gen_tok, od->d };
	enum mlk_status st = gendeid_file(&gp, in, out, NULL, e);
	if (st == MLK_OK)
		st = gendeid_index(out, &idx, e);
	if (st == MLK_OK) {
		int fd = open(out, O_RDONLY | O_CLOEXEC);
		st = fd < 0 ? mlk_error_errno(e, name, "cannot reopen")
			    : store(od, fd, name, hex, e);
		if (fd >= 0)
			close(fd);
	}
	if (st == MLK_OK && idx) {
		int fd = open(idx, O_RDONLY | O_CLOEXEC);
		st = fd < 0 ? mlk_error_errno(e, name, "cannot reopen")
			    : store(od, fd, name, ihex, e);
		if (fd >= 0)
			close(fd);
	}
	/* messages name the object, not the store's path */
	if (st != MLK_OK)
		snprintf(e->file, sizeof e->file, "%s", name);
	if (idx) {
		unlink(idx);
		free(idx);
	}
	unlink(out);
	rmdir(dir);
	free(out);
	return st;
}

/* Whether line holds the key "blob" at all (memmem is not POSIX). */
static int mentions_blob(const char *p, size_t n)
{
	const char *end = p + n;
	for (const char *q = p; q + 6 <= end; q++) {
		q = memchr(q, '"', (size_t)(end - q) - 5);
		if (!q)
			return 0;
		if (!memcmp(q, "\"blob\"", 6))
			return 1;
	}
	return 0;
}

static int is_hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* An index of the original (genomics_detect()'s index types). */
static int is_index_type(const char *ty)
{
	return !strcmp(ty, "tbi") || !strcmp(ty, "bai") ||
	       !strcmp(ty, "crai") || !strcmp(ty, "csi");
}

static int json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The span of _mlk's member "index" (value token v) with one comma, so
 * that cutting it leaves valid JSON: the comma before it, or after it
 * when it is the first member.
 */
static void member_span(const struct rec *r, int v, const char *line,
			size_t n, size_t *begin, size_t *end)
{
	size_t kb, ke, vb, ve;
	rec_span(r, v - 1, &kb, &ke);
	rec_span(r, v, &vb, &ve);
	size_t b = kb;
	while (b > 0 && json_space(line[b - 1]))
		b--;
	if (b > 0 && line[b - 1] == ',') {
		*begin = b - 1;
		*end = ve;
		return;
	}
	size_t x = ve;
	while (x < n && json_space(line[x]))
		x++;
	if (x < n && line[x] == ',')
		x++;
	*begin = kb;
	*end = x;
}

/*
 * The record with its blob replaced by the copy's name, followed by
 * "index" when the copy has one; an "index" the input carried (the
 * original's) is cut, wherever it stood.
 */
static void rewrite(const struct rec *r, int m, int b, const char *line,
		    size_t n, const char *hex, const char *ihex,
		    struct buf *out)
{
	size_t bb, be, ib = n, ie = n;
	rec_span(r, b, &bb, &be);
	int oi = rec_get(r, m, "index");
	if (oi >= 0)
		member_span(r, oi, line, n, &ib, &ie);
	size_t at = 0;
	if (ib < bb) {
		buf_add(out, line, ib);
		at = ie;
	}
	buf_add(out, line + at, bb - at);
	buf_addf(out, "\"sha256:%.64s\"", hex);
	if (*ihex)
		buf_addf(out, ",\"index\":\"sha256:%.64s\"", ihex);
	at = be;
	if (ib >= be && ib < n) {
		buf_add(out, line + at, ib - at);
		at = ie;
	}
	buf_add(out, line + at, n - at);
	buf_addch(out, '\n');
}

enum mlk_status objdeid_record(struct objdeid *od, const char *line,
			       size_t n, struct buf *out, struct mlk_error *e)
{
	if (!mentions_blob(line, n)) {
		buf_add(out, line, n);
		buf_addch(out, '\n');
		return MLK_OK;
	}
	if (rec_parse(&od->r, line, n, e) != MLK_OK)
		return MLK_PARTIAL;
	int m = rec_get(&od->r, 0, "_mlk");
	int b = m >= 0 ? rec_get(&od->r, m, "blob") : -1;
	if (b < 0) {
		buf_add(out, line, n);
		buf_addch(out, '\n');
		return MLK_OK;
	}
	int t = rec_get(&od->r, m, "type");
	struct buf blob = BUF_INIT, type = BUF_INIT;
	rec_str(&od->r, b, &blob);
	if (t >= 0)
		rec_str(&od->r, t, &type);
	const char *ty = type.data ? type.data : "";
	enum mlk_status st;
	char hex[SHA256_HEX], ihex[SHA256_HEX] = "";
	/* The original's index describes the original's byte layout; the
	 * de-identified data record carries its own (_mlk.index). */
	if (is_index_type(ty)) {
		od->superseded++;
		st = MLK_OK;
		goto done;
	}
	if (!blob.data || strncmp(blob.data, "sha256:", 7) ||
	    !is_hex64(blob.data + 7)) {
		st = mlk_error_set(e, MLK_PARTIAL, NULL, 0, "_mlk.blob is not "
				   "sha256:HEX");
		goto done;
	}
	const char *name = blob.data;
	char *in = object_path(od->l, blob.data + 7);
	if (!strcmp(ty, "dicom"))
		st = dicom_object(od, in, name, hex, e);
	else if (!strcmp(ty, "vcf") || !strcmp(ty, "bcf") ||
		 !strcmp(ty, "sam") || !strcmp(ty, "bam") ||
		 !strcmp(ty, "cram"))
		st = genomics_object(od, in, name, hex, ihex, e);
	else
		st = mlk_error_set(e, MLK_PARTIAL, name, 0, "no "
				   "de-identification for objects of this "
				   "type yet");
	free(in);
	if (st == MLK_DENIED)   /* burned-in text: left out, not a denial */
		st = e->status = MLK_PARTIAL;
	if (st != MLK_OK)
		goto done;
	od->count++;
	rewrite(&od->r, m, b, line, n, hex, ihex, out);
done:
	buf_release(&blob);
	buf_release(&type);
	return st;
}
