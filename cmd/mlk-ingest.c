/*
 * mlk-ingest — land files, directories and stdin in the raw zone.
 *
 * Every source's bytes go once into the object store; its records are
 * parsed (format from content), partitioned and written as one atomic
 * batch per run; each record also goes to stdout with its _mlk envelope.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "batch.h"
#include "buf.h"
#include "catalog.h"
#include "crypto.h"
#include "dicom.h"
#include "ehr.h"
#include "fsio.h"
#include "genomics.h"
#include "lake.h"
#include "object.h"
#include "par.h"
#include "partition.h"
#include "policy.h"
#include "record.h"
#include "status.h"
#include "unpack.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_text[] =
"usage: mlk-ingest [--lake DIR] [--dataset NAME] [--source-system NAME]\n"
"                  [--format FORMAT] [--purpose TEXT] [--quiet]\n"
"                  [--project NAME] [--assay NAME] [--pipeline-version V]\n"
"                  FILE|DIR|- ...\n"
"\n"
"Land EHR sources (FHIR NDJSON, FHIR Bundles, CSV, NDJSON, HL7 v2; gzip\n"
"or not), DICOM files, genomics files (VCF/BCF, SAM/BAM/CRAM, FASTQ) and\n"
"zip and tar archives of them in the raw zone of a lake and write their\n"
"records to stdout.\n"
"\n"
"  --lake DIR            the lake (default: $MLK_LAKE, then the nearest\n"
"                        ancestor holding mlk.yaml)\n"
"  --dataset NAME        dataset to land in (default: ehr/default)\n"
"  --source-system NAME  record where the data came from\n"
"  --format FORMAT       auto, fhir-ndjson, fhir-bundle, csv, ndjson or\n"
"                        hl7v2\n"
"                        (default: auto, from the content)\n"
"  --purpose TEXT        why, for the audit log\n"
"  --project NAME, --assay NAME, --pipeline-version V\n"
"                        genomics partitions (default: from\n"
"                        mlk-genomics.yaml beside the files)\n"
"  --quiet               no summary on stderr\n"
"  --help, --version\n"
"\n"
"Exit status: 0 ok, 1 some input quarantined, 2 usage, 3 denied by\n"
"policy, 4 integrity failure, 5 system error.  See mlk-ingest(1).\n";

static void usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

struct input {
	char *path;              /* as named (or found under a directory) */
	int is_stdin;
	char sha256[SHA256_HEX];
	unsigned long long size;
	int skip;                /* already in the dataset, or duplicate */
	char *unreadable;        /* why it could not be read */
	struct object_info obj;  /* its bytes in the object store */
	int fd;                  /* open while its object is being copied */
	int stored;              /* store_input() done (by prestore) */
	struct mlk_error *store_err; /* what stopped it, when it failed */
};

struct inputs {
	struct input *v;
	size_t n, alloc;
};

static void add_input(struct inputs *in, const char *path, int is_stdin)
{
	XGROW(in->v, in->alloc, in->n + 1);
	struct input *i = &in->v[in->n++];
	memset(i, 0, sizeof *i);
	i->path = xstrdup(path);
	i->is_stdin = is_stdin;
	i->obj.fd = -1;
	i->fd = -1;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk a directory in sorted order, so runs are reproducible.  Hidden
 * entries are skipped; symbolic links are not followed into. */
static void walk(struct inputs *in, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		add_input(in, dir, 0);
		in->v[in->n - 1].unreadable = xasprintf("cannot open "
							"directory: %s",
							strerror(errno));
		return;
	}
	char **names = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' ||
		    !strcmp(de->d_name, GENOMICS_SIDECAR))
			continue;  /* hidden, or settings for its folder */
		XGROW(names, alloc, n + 1);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_name);
	for (size_t i = 0; i < n; i++) {
		char *p = strcmp(dir, "/") ? xasprintf("%s/%s", dir, names[i])
					  : xasprintf("/%s", names[i]);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			walk(in, p);
		else if (lstat(p, &st) == 0 && !S_ISREG(st.st_mode) &&
			 !S_ISLNK(st.st_mode))
			; /* sockets, fifos, devices: not data */
		else
			add_input(in, p, 0);
		free(p);
		free(names[i]);
	}
	free(names);
}

/*
 * Where a source's bytes came from: a file or stdin as named, or a member
 * of an archive among them (members[] outermost first).
 */
struct origin {
	const char *path;            /* the input as named */
	const char *label;           /* for messages: path, or path and
					member numbers (names may be PHI) */
	const char *regpath;         /* in the manifest: path!/member... */
	const char *sha256;          /* of these bytes */
	unsigned long long size;
	const char *archive_sha256;  /* of the outermost archive, or NULL */
	const char *members[2];
	int depth;                   /* number of members */
	const char *read_path;       /* where the bytes can be read now */
	int fd;                      /* else the source, while copied */
	int is_stdin;
};

struct run {
	const char *dataset;
	const char *source_system;
	struct lake *lake;
	struct batch *b;
	size_t si;               /* current source index in the batch */
	const struct origin *cur;
	enum ehr_format fmt;     /* --format */
	const struct ynode *date_cols, *date_field;
	int threads;
	struct pspec gspec;      /* genomics */
	int have_gspec;
	struct genomics_meta gopt;  /* --project, --assay, ... */
	char *side_dir;          /* the folder whose sidecar is in side */
	struct genomics_meta side;
	struct mlk_error side_e; /* what was wrong with that sidecar */
	struct unpack_limits lim;
	unsigned long long expanded;
	struct object_info *objs;   /* archive members, until published */
	size_t nobjs, objs_alloc;
	enum ehr_format used;
	struct pspec spec[4];    /* fhir, csv, ndjson, hl7v2 */
	int have_spec[4];
	struct pspec dspec;      /* dicom */
	int have_dspec;
	struct buf head, mid, tail;
	const struct pspec *ps;  /* the current source's partition spec */
	int ps_sys[PSPEC_MAX];   /* field i is source_system */
	const struct vocab *vocab; /* controlled fields, or NULL */
	int stdout_ok;
	int progress, progress_shown;
	unsigned long long emitted, rejected;
	struct mlk_error *e;
};

/* Decimal digits of v into out (no NUL); returns the length. */
static size_t fmt_ll(char *out, long long v)
{
	char t[24];
	size_t n = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v
				     : (unsigned long long)v;
	do {
		t[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	size_t k = 0;
	if (v < 0)
		out[k++] = '-';
	while (n)
		out[k++] = t[--n];
	return k;
}

static int family_index(enum ehr_format f)
{
	const char *fam = ehr_format_family(f);
	return !strcmp(fam, "fhir") ? 0 : !strcmp(fam, "csv") ? 1
	       : !strcmp(fam, "hl7v2") ? 3 : 2;
}

static void write_stdout(struct run *r, const char *p, size_t n)
{
	if (!r->stdout_ok)
		return;
	int err = 0;
	if (n >= (64u << 10)) {
		/* Whole blocks of lines go straight out, without a copy. */
		if (fflush(stdout) != 0)
			err = errno;
		while (!err && n) {
			ssize_t w = write(1, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				err = w < 0 ? errno : EIO;
				break;
			}
			p += w;
			n -= (size_t)w;
		}
	} else if (fwrite(p, 1, n, stdout) != n) {
		err = errno;
	}
	if (err) {
		r->stdout_ok = 0;
		if (err == EPIPE)
			mlk_warn("stdout closed; records are still landed "
				 "in the lake");
		else
			mlk_warn("cannot write records to stdout: %s",
				 strerror(err));
	}
}

/* Runs on parse threads: reads only what is fixed for the source. */
static size_t sink_format(void *ctx, const struct ehr_item *it, struct buf *l,
			  struct buf *part)
{
	const struct run *r = ctx;
	const struct pspec *ps = r->ps;
	/* Both buffers may already hold earlier records: append only. */
	size_t p0 = part->len, l0 = l->len;

	for (size_t i = 0; i < ps->n; i++) {
		const struct pfield *f = &ps->f[i];
		const char *v = NULL;
		size_t vn = 0;
		int num = 0;
		if (i)
			buf_addch(part, '/');
		if (r->ps_sys[i]) {
			v = r->source_system;
			vn = v ? strlen(v) : 0;
		} else if (!it->lookup(it, f->source, &v, &vn, &num)) {
			v = NULL;
		} else if (r->vocab && !num) {
			const char *pv = vocab_field_preferred(r->vocab,
				f->source, strlen(f->source), v, vn);
			if (pv)
				v = pv, vn = strlen(pv);
		}
		partition_add(f, v, vn, num, part);
	}

	/*
	 * The envelope ends with the fields the lake keeps in the file's
	 * path (dataset, batch, zone, partition), so that the stored record
	 * is this line cut before them.
	 */
	char num[24];
	if (r->vocab)
		vocab_apply(r->vocab, it->body, it->body_len, l);
	else
		buf_add(l, it->body, it->body_len);
	if (!it->empty)
		buf_addch(l, ',');
	buf_addstr(l, "\"_mlk\":{\"v\":1,\"kind\":\"ehr\",\"type\":");
	buf_add_json_cstr(l, it->type);
	buf_add(l, r->head.data, r->head.len);
	buf_add(l, num, fmt_ll(num, it->line));
	if (it->entry >= 0) {
		buf_addstr(l, ",\"entry\":");
		buf_add(l, num, fmt_ll(num, it->entry));
	}
	buf_add(l, r->mid.data, r->mid.len);
	size_t keep = l->len - l0;
	buf_add(l, r->tail.data, r->tail.len);
	buf_add_json_str(l, part->data + p0, part->len - p0);
	buf_add(l, "}}\n", 3);
	return keep;
}

static void sink_output(void *ctx, const char *lines, size_t len)
{
	write_stdout(ctx, lines, len);
}

static int sink_commit(void *ctx, const char *line, size_t len, size_t keep,
		       const char *part, size_t plen)
{
	struct run *r = ctx;
	(void)len;
	r->emitted++;
	/* Progress for a person watching; never when stderr is a file. */
	if (r->progress && !(r->emitted & 0xffff)) {
		fprintf(stderr, "\rmlk-ingest: %llu records", r->emitted);
		r->progress_shown = 1;
	}
	r->b->src[r->si].records++;
	batch_kind(r->b, "ehr");
	if (batch_add(r->b, part, plen, line, keep, "}}\n", 3, r->e) !=
	    MLK_OK)
		return MLK_SYSTEM;
	return 0;
}

static int sink_reject(void *ctx, long long line, unsigned long long offset,
		       const char *raw, size_t rawlen, const char *reason)
{
	struct run *r = ctx;
	r->rejected++;
	struct mlk_error pe = MLK_ERROR_INIT;
	mlk_error_set(&pe, MLK_PARTIAL, r->cur->label, line, "%s; quarantined",
		      reason);
	mlk_error_print(mlk_progname, &pe);
	if (batch_quarantine(r->b, r->si, line, offset, raw, rawlen, reason,
			     r->e) != MLK_OK)
		return MLK_SYSTEM;
	return 0;
}

/* "src":{ and its members up to the source's sha256. */
static void add_src(struct buf *b, const struct origin *o)
{
	buf_addstr(b, "\"src\":{\"path\":");
	buf_add_json_cstr(b, o->path);
	if (o->depth) {
		buf_addstr(b, ",\"member\":[");
		for (int i = 0; i < o->depth; i++) {
			if (i)
				buf_addch(b, ',');
			buf_add_json_cstr(b, o->members[i]);
		}
		buf_addf(b, "],\"archive_sha256\":\"%s\"", o->archive_sha256);
	}
	buf_addf(b, ",\"sha256\":\"%s\"", o->sha256);
}

/* The envelope parts that are the same for every record of a source. */
static void source_envelope(struct run *r, const struct origin *o)
{
	buf_reset(&r->head);
	buf_addch(&r->head, ',');
	add_src(&r->head, o);
	buf_addstr(&r->head, ",\"line\":");
	buf_reset(&r->mid);
	buf_addch(&r->mid, '}');
	if (r->source_system) {
		buf_addstr(&r->mid, ",\"source_system\":");
		buf_add_json_cstr(&r->mid, r->source_system);
	}
	buf_reset(&r->tail);
	buf_addstr(&r->tail, ",\"dataset\":");
	buf_add_json_cstr(&r->tail, r->dataset);
	buf_addf(&r->tail, ",\"batch\":\"%s\",\"zone\":\"raw\",\"partition\":",
		 r->b->id);
}

/* Called once the format of a source is known, before its first record. */
static void sink_begin(void *ctx, enum ehr_format used)
{
	struct run *r = ctx;
	r->used = used;
	r->ps = &r->spec[family_index(used)];
	for (size_t i = 0; i < r->ps->n; i++)
		r->ps_sys[i] = !strcmp(r->ps->f[i].source, "source_system");
}

/* A whole source is unusable: say why, and quarantine it by its hash. */
static enum mlk_status quarantine_whole(struct run *r, size_t si,
					const char *label,
					const struct mlk_error *pe)
{
	free(r->b->src[si].whole_reason);
	r->b->src[si].whole_reason = xstrdup(pe->msg);
	struct mlk_error qe = MLK_ERROR_INIT;
	mlk_error_set(&qe, MLK_PARTIAL, label, pe->line, "%s; quarantined",
		      pe->msg);
	mlk_error_print(mlk_progname, &qe);
	return batch_quarantine(r->b, si, 0, 0, NULL, 0, pe->msg, r->e);
}

static enum mlk_status land(struct run *r, const struct origin *o,
			    size_t si);

/* The source's own name: the innermost member's, else the path. */
static const char *origin_name(const struct origin *o)
{
	return o->is_stdin ? NULL : o->depth ? o->members[o->depth - 1]
					     : o->path;
}

static enum mlk_status land_ehr(struct run *r, const struct origin *o,
				size_t si)
{
	r->si = si;
	r->cur = o;
	source_envelope(r, o);
	char *table = ehr_table_name(o->is_stdin ? "stdin"
				     : o->depth ? o->members[o->depth - 1]
				     : o->path);
	struct ehr_conf conf = {
		table,
		r->date_field && r->date_field->type == YNODE_SCALAR
			? r->date_field->scalar : NULL,
		r->date_cols,
	};
	struct mlk_error pe = MLK_ERROR_INIT;
	enum mlk_status ps = ehr_parse(o->fd >= 0 ? o->path : o->read_path,
				       o->fd, r->fmt, &conf,
				       &(struct ehr_sink){ r, sink_begin,
					       sink_format, sink_output,
					       sink_commit, sink_reject,
					       r->threads },
				       &r->used, &pe);
	free(table);
	snprintf(r->b->src[si].format, sizeof r->b->src[si].format, "%s",
		 ehr_format_name(r->used));
	if (ps == MLK_PARTIAL)
		return quarantine_whole(r, si, o->label, &pe);
	if (ps != MLK_OK && r->e->status == MLK_OK)
		*r->e = pe;
	return ps;
}

/* The genomics settings of a source: options first, then the sidecar in
 * the folder of the file (of the archive, for a member). */
static enum mlk_status genomics_settings(struct run *r, const char *path,
					 struct genomics_meta *m,
					 struct mlk_error *pe)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, (size_t)(slash - path + (slash ==
						    path))) : xstrdup(".");
	enum mlk_status s = MLK_OK;
	if (!r->side_dir || strcmp(dir, r->side_dir)) {
		genomics_meta_release(&r->side);
		free(r->side_dir);
		r->side_dir = dir;
		dir = NULL;
		mlk_error_clear(&r->side_e);
		if (genomics_sidecar(r->side_dir, &r->side, pe) != MLK_OK) {
			genomics_meta_release(&r->side);
			r->side_e = *pe;
			mlk_error_set(&r->side_e, pe->status, NULL, 0,
				      "%s:%lld: %s", GENOMICS_SIDECAR,
				      pe->line, pe->msg);
		}
	}
	free(dir);
	if (r->side_e.status != MLK_OK) {
		*pe = r->side_e;
		s = pe->status;
	}
	m->project = r->gopt.project ? r->gopt.project : r->side.project;
	m->assay = r->gopt.assay ? r->gopt.assay : r->side.assay;
	m->pipeline_version = r->gopt.pipeline_version
		? r->gopt.pipeline_version : r->side.pipeline_version;
	return s;
}

/*
 * The envelope of a record describing one whole object (genomics, DICOM):
 * l holds the record's own members; this adds _mlk (kind, type, src,
 * blob, size, source_system, then the parts implied by its place),
 * prints it, and adds it to the batch.  Releases l and part.
 */
static enum mlk_status emit_object(struct run *r, const struct origin *o,
				   size_t si, const char *kind,
				   const char *type, struct buf *l,
				   struct buf *part)
{
	buf_addf(l, ",\"_mlk\":{\"v\":1,\"kind\":\"%s\",\"type\":", kind);
	buf_add_json_cstr(l, type);
	buf_addch(l, ',');
	add_src(l, o);
	buf_addf(l, "},\"blob\":\"sha256:%s\",\"size\":%llu", o->sha256,
		 o->size);
	if (r->source_system) {
		buf_addstr(l, ",\"source_system\":");
		buf_add_json_cstr(l, r->source_system);
	}
	size_t keep = l->len;
	buf_addstr(l, ",\"dataset\":");
	buf_add_json_cstr(l, r->dataset);
	buf_addf(l, ",\"batch\":\"%s\",\"zone\":\"raw\",\"partition\":",
		 r->b->id);
	buf_add_json_str(l, part->data ? part->data : "", part->len);
	buf_add(l, "}}\n", 3);
	write_stdout(r, l->data, l->len);
	r->emitted++;
	r->b->src[si].records++;
	batch_kind(r->b, kind);
	enum mlk_status s = batch_add(r->b, part->data ? part->data : "",
				      part->len, l->data, keep, "}}\n", 3,
				      r->e);
	buf_release(l);
	buf_release(part);
	return s;
}

/* One record describing one genomics file, its bytes the blob. */
static enum mlk_status land_genomics(struct run *r, const struct origin *o,
				     size_t si)
{
	struct genomics_meta m = { NULL, NULL, NULL };
	struct genomics_info gi;
	struct mlk_error pe = MLK_ERROR_INIT;
	struct buf l = BUF_INIT, part = BUF_INIT;
	enum mlk_status s = genomics_settings(r, o->is_stdin ? "-" : o->path,
					      &m, &pe);
	if (s == MLK_OK)
		s = genomics_describe(o->read_path, origin_name(o), o->label,
				      &m, &l, &gi, &pe);
	if (s != MLK_OK) {
		buf_release(&l);
		if (s == MLK_PARTIAL || s == MLK_USAGE) {
			/* A broken file, or a broken sidecar beside it. */
			snprintf(r->b->src[si].format,
				 sizeof r->b->src[si].format, "genomics");
			return quarantine_whole(r, si, o->label, &pe);
		}
		*r->e = pe;
		return s;
	}
	snprintf(r->b->src[si].format, sizeof r->b->src[si].format, "%s",
		 gi.type);
	for (size_t i = 0; i < r->gspec.n; i++) {
		const struct pfield *f = &r->gspec.f[i];
		const char *v = !strcmp(f->source, "project") ? m.project
			: !strcmp(f->source, "assay") ? m.assay
			: !strcmp(f->source, "pipeline_version")
				? m.pipeline_version
			: !strcmp(f->source, "reference_build") ? gi.build
			: !strcmp(f->source, "file_format") ? gi.type
			: !strcmp(f->source, "source_system")
				? r->source_system : NULL;
		if (i)
			buf_addch(&part, '/');
		partition_add(f, v, v ? strlen(v) : 0, 0, &part);
	}
	return emit_object(r, o, si, "genomics", gi.type, &l, &part);
}

/* DICOM (issue #3): one record per file; see dicom.h and mlk-record(5). */

/* 1 when a source is DICOM by its first bytes, or is named .dcm (a .dcm
 * that is not DICOM is then quarantined as such). */
static int is_dicom(const struct origin *o)
{
	unsigned char head[132];
	int f = o->fd >= 0 ? o->fd : open(o->read_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f >= 0 ? pread(f, head, sizeof head, 0) : -1;
	if (o->fd < 0 && f >= 0)
		close(f);
	if (n > 0 && dicom_detect(head, (size_t)n))
		return 1;
	const char *name = origin_name(o);
	size_t l = name ? strlen(name) : 0;
	return l > 4 && !strcasecmp(name + l - 4, ".dcm");
}

/* One record describing one DICOM file, its bytes the blob. */
static enum mlk_status land_dicom(struct run *r, const struct origin *o,
				  size_t si)
{
	snprintf(r->b->src[si].format, sizeof r->b->src[si].format, "dicom");
	struct mlk_error pe = MLK_ERROR_INIT;
	int fd = o->fd >= 0 ? o->fd : open(o->read_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		mlk_error_errno(r->e, o->label, "cannot open");
		return r->e->status;
	}
	struct dicom_doc doc;
	enum mlk_status s = (enum mlk_status)dicom_json_fd(fd, o->label, &doc,
							  &pe);
	if (o->fd < 0)
		close(fd);
	if (s != MLK_OK) {
		dicom_doc_release(&doc);
		if (s == MLK_PARTIAL)
			return quarantine_whole(r, si, o->label, &pe);
		*r->e = pe;
		return s;
	}
	struct buf part = BUF_INIT, l = BUF_INIT;
	for (size_t i = 0; i < r->dspec.n; i++) {
		const struct pfield *f = &r->dspec.f[i];
		const char *v = NULL;
		size_t vn = 0;
		if (i)
			buf_addch(&part, '/');
		if (!strcmp(f->source, "source_system")) {
			v = r->source_system;
			vn = v ? strlen(v) : 0;
		} else if (!strcmp(f->source, "type")) {
			v = "dicom";
			vn = 5;
		} else if (!dicom_doc_lookup(&doc, f->source, &v, &vn)) {
			v = NULL;
		}
		partition_add(f, v, vn, 0, &part);
	}
	buf_addch(&l, '{');
	buf_add(&l, doc.json.data, doc.json.len);
	dicom_doc_release(&doc);
	return emit_object(r, o, si, "imaging", "dicom", &l, &part);
}

/* Each regular member through land(), as if it had been named. */
static enum mlk_status land_archive(struct run *r, const struct origin *o,
				    size_t si, const char *type)
{
	snprintf(r->b->src[si].format, sizeof r->b->src[si].format, "%s",
		 type);
	struct mlk_error pe = MLK_ERROR_INIT;
	if (o->depth >= 2) {
		mlk_error_set(&pe, MLK_PARTIAL, o->label, 0, "archive nested "
			      "more than one level deep: not unpacked");
		return quarantine_whole(r, si, o->label, &pe);
	}
	struct unpack *u = NULL;
	if (unpack_open(o->read_path, o->label, &r->lim, &u, &pe) != MLK_OK)
		return quarantine_whole(r, si, o->label, &pe);
	enum mlk_status s = MLK_OK;
	struct unpack_entry ent;
	int k, quarantined = 0;
	long long members = 0;
	while (s == MLK_OK && (k = unpack_next(u, &ent, &pe)) != 0) {
		if (k < 0) {
			s = quarantine_whole(r, si, o->label, &pe);
			quarantined = 1;
			break;
		}
		members++;
		struct buf label = BUF_INIT, reg = BUF_INIT;
		buf_addf(&label, "%s member %lld", o->label, ent.index);
		buf_addf(&reg, "%s!/%s", o->regpath, ent.name);
		if (!ent.regular) {
			if (strcmp(ent.what, "directory"))
				mlk_warn("'%s': %s passed over", label.data,
					 ent.what);
			buf_release(&label);
			buf_release(&reg);
			continue;
		}
		/* The member's bytes go to a nameless temp file, then into
		 * the object store like any source's. */
		int fd = -1;
		char *tmp = NULL, *near = lake_path(r->lake, "objects/unpack");
		s = fsio_temp_beside(near, &fd, &tmp, r->e);
		free(near);
		if (s == MLK_OK) {
			unlink(tmp);
			free(tmp);
		}
		enum mlk_status cs = s == MLK_OK ? unpack_copy(u, fd, &pe)
						 : s;
		if (cs == MLK_PARTIAL) {
			size_t msi = batch_add_source(r->b, reg.data, "", 0);
			snprintf(pe.file, sizeof pe.file, "%s", label.data);
			s = quarantine_whole(r, msi, label.data, &pe);
		} else if (cs != MLK_OK && s == MLK_OK) {
			*r->e = pe;
			s = cs;
		}
		if (cs == MLK_OK) {
			XGROW(r->objs, r->objs_alloc, r->nobjs + 1);
			struct object_info *oi = &r->objs[r->nobjs];
			memset(oi, 0, sizeof *oi);
			oi->fd = -1;
			s = object_put_fd(r->lake, fd, label.data, oi, r->e);
			if (s == MLK_OK)
				s = object_wait(oi, label.data, r->e);
			if (s == MLK_OK)
				r->nobjs++;
			else
				object_discard(oi);
		}
		if (fd >= 0)
			close(fd);
		if (cs == MLK_OK && s == MLK_OK) {
			const struct object_info *oi = &r->objs[r->nobjs - 1];
			char *rp = object_read_path(r->lake, oi);
			struct origin mo = *o;
			mo.label = label.data;
			mo.regpath = reg.data;
			mo.sha256 = oi->sha256;
			mo.size = oi->size;
			mo.archive_sha256 = o->depth ? o->archive_sha256
						     : o->sha256;
			mo.members[o->depth] = ent.name;
			mo.depth = o->depth + 1;
			mo.read_path = rp;
			mo.fd = -1;
			mo.is_stdin = 0;
			size_t msi = batch_add_source(r->b, reg.data,
						      oi->sha256, oi->size);
			/* A member that is an archive reads the same handle
			 * type: its own, so the outer one stays where it is. */
			s = land(r, &mo, msi);
			free(rp);
		}
		buf_release(&label);
		buf_release(&reg);
	}
	unpack_close(u);
	/* An archive of nothing (libarchive also reads a run of zero bytes
	 * as an empty tar) lands nothing: say so rather than succeed. */
	if (s == MLK_OK && !quarantined && members == 0) {
		mlk_error_set(&pe, MLK_PARTIAL, o->label, 0,
			      "%s archive with no members", type);
		s = quarantine_whole(r, si, o->label, &pe);
	}
	return s;
}

/*
 * Every source, named or found in an archive, comes here: its kind is
 * told from its content (genomics through htslib, archives through
 * libarchive, else EHR), unless --format names an EHR format.
 */
static enum mlk_status land(struct run *r, const struct origin *o,
			    size_t si)
{
	if (r->fmt == EHR_AUTO) {
		const char *t;
		if ((t = genomics_detect(o->read_path, origin_name(o))))
			return land_genomics(r, o, si);
		if ((t = unpack_detect(o->read_path)))
			return land_archive(r, o, si, t);
		if (is_dicom(o))
			return land_dicom(r, o, si);
	}
	return land_ehr(r, o, si);
}

static enum mlk_status store_input(struct lake *l, struct input *in,
				   struct mlk_error *e)
{
	int fd = in->is_stdin ? 0 : open(in->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		in->unreadable = xasprintf("cannot open: %s", strerror(errno));
		return MLK_OK;
	}
	struct stat st;
	if (!in->is_stdin && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		in->unreadable = xstrdup("is a directory");
		return MLK_OK;
	}
	struct object_info *oi = &in->obj;
	enum mlk_status s = object_put_fd(l, fd, in->path, oi, e);
	/* While its copy runs, the source itself is what gets parsed. */
	if (s == MLK_OK && oi->copy)
		in->fd = fd;
	else if (!in->is_stdin)
		close(fd);
	if (s != MLK_OK) {
		/* A read error is this input's problem; a store error is
		 * the lake's and stops the run. */
		if (strstr(e->msg, "read error")) {
			in->unreadable = xstrdup(e->msg);
			return MLK_OK;
		}
		return s;
	}
	memcpy(in->sha256, oi->sha256, SHA256_HEX);
	in->size = oi->size;
	return MLK_OK;
}

/*
 * Phase 1 on several threads: each thread takes the next input and, when
 * it is a regular file small enough to be copied at once, stores it
 * (store_input) while the other threads store others.  Creating,
 * hashing and copying thousands of small files is CPU work in the kernel
 * as much as in mlk (a new inode costs 0.1-0.7 ms on a file system
 * without a journal, where ext4 scans past recently deleted inodes), so
 * it spreads over the cores.  Nothing here depends on which thread took
 * what: the serial loop then goes over the inputs in order as before,
 * storing what was left (stdin, big files, whose copies run on threads
 * of their own and are bounded there) and stopping at the first error.
 */
struct prestore {
	struct lake *lake;
	struct inputs *in;
};

static void prestore_one(void *ctx, size_t i)
{
	struct prestore *p = ctx;
	struct input *x = &p->in->v[i];
	struct stat st;
	if (x->is_stdin || x->unreadable || stat(x->path, &st) != 0 ||
	    !S_ISREG(st.st_mode) ||
	    (unsigned long long)st.st_size >= OBJECT_ASYNC_MIN)
		return;
	struct mlk_error e = MLK_ERROR_INIT;
	if (store_input(p->lake, x, &e) != MLK_OK) {
		x->store_err = xmalloc(sizeof e);
		*x->store_err = e;
	}
	x->stored = 1;
}

static void prestore_inputs(struct lake *l, struct inputs *in, int threads)
{
	struct prestore p = { l, in };
	par_for(in->n, threads > 8 ? 8 : threads, prestore_one, &p);
}

/* Let an input's copy finish; the parse then reads the stored copy. */
static void settle_input(struct input *x)
{
	struct mlk_error we = MLK_ERROR_INIT;
	if (object_wait(&x->obj, x->path, &we) != MLK_OK)
		x->unreadable = xstrdup(we.msg);
	if (x->fd >= 0 && !x->is_stdin)
		close(x->fd);
	x->fd = -1;
}

static void json_input_list(struct buf *b, const struct inputs *in)
{
	int first = 1;
	buf_addch(b, '[');
	for (size_t i = 0; i < in->n; i++) {
		const struct input *x = &in->v[i];
		if (x->skip || x->unreadable)
			continue;
		buf_addf(b, "%s{\"sha256\":\"%s\",\"bytes\":%llu}",
			 first ? "" : ",", x->sha256, x->size);
		first = 0;
	}
	buf_addch(b, ']');
}

static int deny(struct lake *l, struct identity *id,
		const struct decision *d, const char *dataset,
		const char *purpose)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct audit_event ev = { "mlk-ingest", "ingest", purpose, "raw",
				  dataset, d, NULL, NULL, NULL, MLK_DENIED };
	if (audit_append(l, id, &ev, &e) != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	mlk_warn("ingest into raw/%s denied for user '%s' by policy rule '%s'",
		 dataset, id->user, d->rule);
	return MLK_DENIED;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lake", required_argument, NULL, 'L' },
		{ "dataset", required_argument, NULL, 'd' },
		{ "source-system", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "project", required_argument, NULL, 'P' },
		{ "assay", required_argument, NULL, 'A' },
		{ "pipeline-version", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *lakedir = NULL, *dataset = "ehr/default";
	const char *source_system = NULL, *purpose = NULL;
	int quiet = 0, c;
	struct genomics_meta gopt = { NULL, NULL, NULL };
	enum ehr_format fmt = EHR_AUTO;

	mlk_progname = "mlk-ingest";
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'L': lakedir = optarg; break;
		case 'd': dataset = optarg; break;
		case 's': source_system = optarg; break;
		case 'p': purpose = optarg; break;
		case 'q': quiet = 1; break;
		case 'P': gopt.project = optarg; break;
		case 'A': gopt.assay = optarg; break;
		case 'R': gopt.pipeline_version = optarg; break;
		case 'f': {
			int f = ehr_format_parse(optarg);
			if (f < 0) {
				mlk_warn("unknown format '%s'", optarg);
				usage(MLK_USAGE);
			}
			fmt = (enum ehr_format)f;
			break;
		}
		case 'h': usage(0); break;
		case 'V': puts("mlk-ingest " MLK_VERSION); return 0;
		case ':':
			mlk_warn("option '%s' needs a value", argv[optind - 1]);
			usage(MLK_USAGE);
			break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (optind >= argc) {
		mlk_warn("no input given (use - for stdin)");
		usage(MLK_USAGE);
	}
	if (!lake_dataset_valid(dataset)) {
		mlk_warn("invalid dataset name '%s' (want e.g. ehr/encounters: "
			 "lowercase letters, digits, . _ -, up to 4 levels)",
			 dataset);
		return MLK_USAGE;
	}
	if (source_system && (!*source_system || strlen(source_system) > 128)) {
		mlk_warn("--source-system must be 1 to 128 bytes");
		return MLK_USAGE;
	}
	const char *gval[3] = { gopt.project, gopt.assay,
				gopt.pipeline_version };
	static const char *const gname[3] = { "--project", "--assay",
					      "--pipeline-version" };
	for (int k = 0; k < 3; k++)
		if (gval[k] && (!*gval[k] || strlen(gval[k]) > 128 ||
				utf8_invalid_at(gval[k], strlen(gval[k])) >=
					0)) {
			mlk_warn("%s must be 1 to 128 bytes of UTF-8",
				 gname[k]);
			return MLK_USAGE;
		}
	signal(SIGPIPE, SIG_IGN);

	struct mlk_error e = MLK_ERROR_INIT;
	struct lake lake;
	if (lake_open(lakedir, &lake, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct identity id;
	struct decision d;
	enum mlk_status ps0 = policy_identity(&lake, &id, &e);
	if (ps0 == MLK_OK)
		ps0 = policy_check(&lake, &id, "ingest", "raw", dataset, &d,
				   &e);
	if (ps0 != MLK_OK) {
		/* A policy that cannot be read denies, and says where. */
		mlk_error_print(mlk_progname, &e);
		memset(&d, 0, sizeof d);
		snprintf(d.rule, sizeof d.rule, "policy-error");
		int rc = deny(&lake, &id, &d, dataset, purpose);
		identity_release(&id);
		lake_close(&lake);
		return rc;
	}
	if (!d.allow) {
		int rc = deny(&lake, &id, &d, dataset, purpose);
		identity_release(&id);
		lake_close(&lake);
		return rc;
	}

	int status = MLK_OK;
	struct inputs in = { 0 };
	int stdin_seen = 0;
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "-")) {
			if (stdin_seen++) {
				mlk_warn("stdin named twice");
				return MLK_USAGE;
			}
			add_input(&in, "-", 1);
		} else if (fsio_is_dir(argv[i])) {
			walk(&in, argv[i]);
		} else {
			add_input(&in, argv[i], 0);
		}
	}

	/* One lock per dataset: runs into one dataset take turns. */
	char *dsdir = lake_path(&lake, "raw/%s", dataset);
	char *lockp = lake_path(&lake, "raw/%s/.lock", dataset);
	int lock = -1;
	enum mlk_status s = fsio_mkdirs(dsdir, 0755, &e);
	if (s == MLK_OK)
		s = fsio_lock(lockp, &lock, &e);
	free(dsdir);
	free(lockp);

	/* Phase 1: every source into the object store, hashed.  Copies of
	 * big files run on threads; at most two at a time, the older one
	 * finished (and its source closed) before a third starts. */
	char **shas = NULL;
	size_t nshas = 0, shas_alloc = 0;
	size_t running[3], nrunning = 0;
	if (s == MLK_OK && in.n > 1)
		prestore_inputs(&lake, &in, (int)lake_conf_num(&lake, "ingest",
							       "threads", 2));
	for (size_t i = 0; i < in.n && s == MLK_OK; i++) {
		struct input *x = &in.v[i];
		if (x->unreadable && !x->store_err)
			continue;
		if (!x->stored) {
			s = store_input(&lake, x, &e);
		} else if (x->store_err) {
			e = *x->store_err;
			s = e.status;
		}
		if (s != MLK_OK || x->unreadable)
			continue;
		if (x->obj.copy) {
			running[nrunning++] = i;
			if (nrunning == 3) {
				settle_input(&in.v[running[0]]);
				running[0] = running[1];
				running[1] = running[2];
				nrunning = 2;
			}
			if (in.v[i].unreadable)
				continue;
		}
		char known[BATCH_ID_LEN];
		if (batch_source_known(&lake, dataset, x->sha256, known)) {
			x->skip = 1;
			if (!quiet)
				mlk_warn("'%s': already ingested in %s (batch "
					 "%s); nothing to do", x->path, dataset,
					 known);
			continue;
		}
		for (size_t k = 0; k < nshas; k++)
			if (!strcmp(shas[k], x->sha256)) {
				x->skip = 1;
				if (!quiet)
					mlk_warn("'%s': same bytes as an "
						 "earlier input; ingested once",
						 x->path);
				break;
			}
		if (!x->skip) {
			XGROW(shas, shas_alloc, nshas + 1);
			shas[nshas++] = x->sha256;
		}
	}

	size_t nunreadable = 0;
	for (size_t i = 0; i < in.n; i++)
		if (in.v[i].unreadable)
			nunreadable++;

	struct buf opts_key = BUF_INIT;
	buf_addf(&opts_key, "format=%s\nsource_system=%s\n",
		 ehr_format_name(fmt), source_system ? source_system : "");
	if (gopt.project || gopt.assay || gopt.pipeline_version)
		buf_addf(&opts_key, "project=%s\nassay=%s\npipeline_version="
			 "%s\n", gopt.project ? gopt.project : "",
			 gopt.assay ? gopt.assay : "", gopt.pipeline_version
			 ? gopt.pipeline_version : "");
	char bid[BATCH_ID_LEN] = "";
	struct batch b;
	memset(&b, 0, sizeof b);
	struct run r;
	memset(&r, 0, sizeof r);
	int did_batch = 0;
	if (s == MLK_OK && nshas) {
		batch_make_id(dataset, opts_key.data, shas, nshas, bid);
	} else if (s == MLK_OK && nunreadable) {
		/* Nothing readable: a batch that only records the failed
		 * inputs, under an id of its own, so no later run collides
		 * with it. */
		uint8_t rnd[16];
		char hex[33];
		if ((s = crypto_random(rnd, sizeof rnd, &e)) == MLK_OK) {
			hex_encode(rnd, sizeof rnd, hex);
			buf_addf(&opts_key, "run=%s\n", hex);
			batch_make_id(dataset, opts_key.data, shas, 0, bid);
		}
	}
	if (s == MLK_OK && nshas && batch_published(&lake, dataset, bid, &e)) {
		if (!quiet)
			mlk_warn("batch %s is already in %s; nothing to do",
				 bid, dataset);
		nshas = 0;
		for (size_t i = 0; i < in.n; i++)
			in.v[i].skip = 1;
	}
	int threads = (int)lake_conf_num(&lake, "ingest", "threads", 2);
	if (s == MLK_OK && (nshas || nunreadable)) {
		struct dw_opts dwo = {
			(size_t)lake_conf_num(&lake, "ingest", "buffer_mb", 24)
				<< 20,
			0,
			(int)lake_conf_num(&lake, "ingest",
					   "compression_level", 1),
			(int)lake_conf_num(&lake, "ingest", "threads", 2),
		};
		s = batch_begin(&b, &lake, dataset,
				!strncmp(dataset, "imaging/", 8) ? "imaging"
								 : "ehr",
				bid, &dwo, &e);
		did_batch = 1;
	}

	/* While the sources are parsed, their objects' bytes go to disk. */
	struct object_sync *osync = NULL;
	if (s == MLK_OK && did_batch) {
		struct object_info **objs = xcalloc(in.n ? in.n : 1,
						    sizeof *objs);
		for (size_t i = 0; i < in.n; i++)
			objs[i] = &in.v[i].obj;
		osync = object_sync_start(objs, in.n);
		free(objs);
	}

	/* Phase 2: parse each new source from its stored bytes. */
	r.dataset = dataset;
	r.source_system = source_system;
	r.lake = &lake;
	r.b = &b;
	r.stdout_ok = 1;
	r.e = &e;
	r.progress = !quiet && mlk_isatty(2);
	struct vocab voc;
	if (s == MLK_OK && (s = vocab_load(&lake, &voc, &e)) == MLK_OK)
		r.vocab = voc.nfields ? &voc : NULL;
	else
		memset(&voc, 0, sizeof voc);
	static const char *const fams[4] = { "fhir", "csv", "ndjson",
					     "hl7v2" };
	for (int k = 0; k < 4 && s == MLK_OK && did_batch; k++) {
		s = lake_pspec(&lake, dataset, fams[k], &r.spec[k], &e);
		r.have_spec[k] = s == MLK_OK;
	}
	if (s == MLK_OK && did_batch) {
		s = lake_pspec(&lake, dataset, "dicom", &r.dspec, &e);
		r.have_dspec = s == MLK_OK;
	}
	static char stdout_buf[1 << 20];
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);
	r.date_cols = lake_dataset_conf(&lake, dataset, "date_columns");
	r.date_field = lake_dataset_conf(&lake, dataset, "date_field");
	r.fmt = fmt;
	r.threads = threads;
	r.gopt = gopt;
	r.lim.max_bytes = (unsigned long long)lake_conf_num(&lake, "ingest",
		"archive_max_mb", (long long)UNPACK_MAX_MB) << 20;
	r.lim.max_ratio = (unsigned long long)lake_conf_num(&lake, "ingest",
		"archive_max_ratio", (long long)UNPACK_MAX_RATIO);
	r.lim.expanded = &r.expanded;
	if (s == MLK_OK && did_batch) {
		s = lake_pspec(&lake, dataset, "genomics", &r.gspec, &e);
		r.have_gspec = s == MLK_OK;
	}
	for (size_t i = 0; i < in.n && s == MLK_OK && did_batch; i++) {
		struct input *x = &in.v[i];
		if (x->skip)
			continue;
		if (x->unreadable) {
			size_t si = batch_add_source(&b, x->path, "", 0);
			b.src[si].whole_reason = xstrdup(x->unreadable);
			mlk_warn("'%s': %s; quarantined", x->path,
				 x->unreadable);
			s = batch_quarantine(&b, si, 0, 0, NULL, 0,
					     x->unreadable, &e);
			continue;
		}
		size_t si = batch_add_source(&b, x->path, x->sha256, x->size);
		char *obj = object_read_path(&lake, &x->obj);
		struct origin o = {
			x->path, x->path, x->path, x->sha256, x->size, NULL,
			{ NULL, NULL }, 0, obj ? obj : x->path,
			obj ? -1 : x->fd, x->is_stdin,
		};
		s = land(&r, &o, si);
		free(obj);
		/* The source was parsed while its copy ran: both must be of
		 * the bytes that were hashed, or nothing of this run lands. */
		if (x->obj.copy) {
			struct mlk_error we = MLK_ERROR_INIT;
			if (object_wait(&x->obj, x->path, &we) != MLK_OK &&
			    s == MLK_OK) {
				e = we;
				s = we.status;
			}
			if (x->fd >= 0 && !x->is_stdin)
				close(x->fd);
			x->fd = -1;
		}
	}
	if (r.progress_shown)
		fputs("\r\033[K", stderr);
	if (fflush(stdout) != 0 && r.stdout_ok)
		mlk_warn("cannot write records to stdout: %s", strerror(errno));

	/* The sources' bytes are durable before any batch names them. */
	object_sync_finish(osync);
	if (s == MLK_OK) {
		size_t nall = in.n + r.nobjs;
		struct object_info **objs = xcalloc(nall ? nall : 1,
						    sizeof *objs);
		for (size_t i = 0; i < in.n; i++)
			objs[i] = &in.v[i].obj;
		for (size_t i = 0; i < r.nobjs; i++)
			objs[in.n + i] = &r.objs[i];
		s = object_publish_many(&lake, objs, nall, &e);
		free(objs);
	}
	if (s == MLK_OK && did_batch) {
		struct buf extra = BUF_INIT;
		if (source_system) {
			buf_addstr(&extra, "\"source_system\":");
			buf_add_json_cstr(&extra, source_system);
			buf_addch(&extra, ',');
		}
		buf_addstr(&extra, "\"format\":");
		buf_add_json_cstr(&extra, ehr_format_name(fmt));
		s = batch_prepare(&b, id.user, "mlk-ingest " MLK_VERSION,
				  extra.data, &e);
		buf_release(&extra);
	}

	if (s == MLK_OK && (b.rejected || nunreadable))
		status = MLK_PARTIAL;
	if (s != MLK_OK)
		status = s;

	/*
	 * The audit event goes first and the batch becomes visible after
	 * it, so no change to the lake is ever without its event.  Should
	 * publishing then fail, a second event says so.
	 */
	struct buf inputs = BUF_INIT, outputs = BUF_INIT, detail = BUF_INIT;
	json_input_list(&inputs, &in);
	if (did_batch && s == MLK_OK)
		buf_addf(&outputs, "[{\"batch\":\"%s\",\"manifest_sha256\":"
			 "\"%s\",\"files\":%zu,\"records\":%llu}]", b.id,
			 b.manifest_sha256, b.nfiles, b.records);
	size_t skipped = 0;
	for (size_t i = 0; i < in.n; i++)
		skipped += in.v[i].skip;
	buf_addf(&detail, "{\"sources\":%zu,\"skipped\":%zu,\"quarantined\":"
		 "%llu,\"unreadable\":%zu}", in.n, skipped,
		 did_batch ? b.quarantined : 0ULL, nunreadable);
	struct audit_event ev = {
		"mlk-ingest", "ingest", purpose, "raw", dataset, &d,
		inputs.data, outputs.data, detail.data, status,
	};
	struct mlk_error ae = MLK_ERROR_INIT;
	int audit_failed = 0;
	if (audit_append(&lake, &id, &ev, &ae) != MLK_OK) {
		mlk_error_print(mlk_progname, &ae);
		if (s == MLK_OK) {
			audit_failed = 1;
			/* Unaudited, the batch must not land. */
			s = ae.status;
			status = s;
			mlk_warn("nothing was landed");
		}
	} else if (s == MLK_OK && did_batch) {
		s = batch_publish(&b, &e);
		if (s != MLK_OK) {
			status = s;
			struct audit_event fail = ev;
			fail.outputs = NULL;
			fail.detail = "{\"aborted\":true}";
			fail.status = s;
			struct mlk_error fe = MLK_ERROR_INIT;
			if (audit_append(&lake, &id, &fail, &fe) != MLK_OK)
				mlk_error_print(mlk_progname, &fe);
		} else {
			/* The batch has landed; its descriptor is a
			 * summary that `mlk-catalog refresh` can rebuild. */
			struct mlk_error ce = MLK_ERROR_INIT;
			if (catalog_note_batch(&lake, dataset, b.id, id.user,
					       lake_now(&lake), &ce) != MLK_OK) {
				mlk_error_print(mlk_progname, &ce);
				mlk_warn("catalog entry of %s not updated",
					 dataset);
			}
		}
	}
	if (s != MLK_OK && did_batch)
		batch_abort(&b);
	fsio_unlock(lock);

	if (s != MLK_OK && !audit_failed)
		mlk_error_print(mlk_progname, &e);
	else if (!quiet && did_batch && s == MLK_OK)
		mlk_warn("batch %s: %llu records from %zu sources into %zu "
			 "files in raw/%s%s", b.id, b.records, b.nsrc,
			 b.nfiles, dataset,
			 b.rejected || nunreadable ? " (some input "
						     "quarantined)" : "");

	buf_release(&inputs);
	buf_release(&outputs);
	buf_release(&detail);
	buf_release(&opts_key);
	buf_release(&r.head);
	buf_release(&r.mid);
	buf_release(&r.tail);
	vocab_release(&voc);
	for (int k = 0; k < 4; k++)
		if (r.have_spec[k])
			pspec_release(&r.spec[k]);
	if (r.have_gspec)
		pspec_release(&r.gspec);
	if (r.have_dspec)
		pspec_release(&r.dspec);
	genomics_meta_release(&r.side);
	free(r.side_dir);
	for (size_t i = 0; i < r.nobjs; i++)
		object_discard(&r.objs[i]);
	free(r.objs);
	if (did_batch)
		batch_release(&b);
	for (size_t i = 0; i < in.n; i++) {
		object_discard(&in.v[i].obj);
		if (in.v[i].fd >= 0 && !in.v[i].is_stdin)
			close(in.v[i].fd);
		free(in.v[i].path);
		free(in.v[i].unreadable);
		free(in.v[i].store_err);
	}
	free(in.v);
	free(shas);
	identity_release(&id);
	lake_close(&lake);
	return status;
}
