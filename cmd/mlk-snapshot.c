/*
 * mlk-snapshot — immutable, content-addressed dataset versions: create,
 * list, show, cat, diff, verify, export, checkout, compact.
 *
 * The engine is common/snapshot.c (versions, manifests, verification),
 * common/drift.c (diff) and common/export.c (archives); this file parses
 * options, asks the policy, audits and reports.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "drift.h"
#include "expect.h"
#include "export.h"
#include "fsio.h"
#include "lake.h"
#include "policy.h"
#include "snapshot.h"
#include "status.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_text[] =
"usage: mlk-snapshot create [--lake DIR] [--note TEXT] [--append]\n"
"                    [--purpose TEXT] [--quiet] [--accept-failures REF]\n"
"                    ZONE/DATASET\n"
"       mlk-snapshot list [--lake DIR] [ZONE/DATASET]\n"
"       mlk-snapshot show [--lake DIR] ID\n"
"       mlk-snapshot cat [--lake DIR] [--where FILTER] [--purpose TEXT] ID\n"
"       mlk-snapshot diff [--lake DIR] [--threshold PSI] [--purpose TEXT]\n"
"                    A B\n"
"       mlk-snapshot verify [--lake DIR] [--all] [ID]\n"
"       mlk-snapshot export [--lake DIR] --format tar|tar.gz|zip -o FILE\n"
"                    [--purpose TEXT] ID\n"
"       mlk-snapshot checkout [--lake DIR] [--purpose TEXT] ID DIR\n"
"       mlk-snapshot compact [--lake DIR] [--target-size BYTES]\n"
"                    [--purpose TEXT] [--quiet] ZONE/DATASET\n"
"\n"
"Commit records read on stdin as an immutable, content-addressed version\n"
"of a curated or training dataset, and list, show, read, compare, verify,\n"
"export, check out and compact versions.\n"
"\n"
"  --lake DIR            the lake (default: $MLK_LAKE, then the nearest\n"
"                        ancestor holding mlk.yaml)\n"
"  --note TEXT           a note kept in the manifest (not in the id)\n"
"  --append              the new version also holds the latest one's files\n"
"  --purpose TEXT        why, for the audit log\n"
"  --quiet               no summary message on stderr\n"
"  --accept-failures REF  commit although blocking expectations fail,\n"
"                        recording REF (a ticket, an approval)\n"
"  --where FILTER        partition filter: COL=V[,V...] COL!=V COL<V\n"
"                        COL<=V COL>V COL>=V, all must hold\n"
"  --threshold PSI       flag fields whose PSI is above it (default 0.2)\n"
"  --all                 verify every snapshot of the lake\n"
"  --format FORMAT       archive format: tar, tar.gz or zip\n"
"  -o FILE, --output FILE  the archive to write\n"
"  --target-size BYTES   compacted file size, uncompressed (default\n"
"                        128M; suffixes K, M, G)\n"
"  --help, --version\n"
"\n"
"Exit status: 0 ok, 1 some records rejected, 2 usage, 3 denied by policy,\n"
"4 integrity failure, 5 system error.  See mlk-snapshot(1).\n";

static void usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

struct opts {
	const char *lake, *note, *purpose, *where, *format, *output;
	const char *threshold, *target, *accept;
	int append, quiet, all;
	int nargs;
	char **args;
};

struct ctx {
	const struct opts *o;
	struct lake lake;
	struct identity id;
	const char *quality;    /* create: the quality gate's result */
};

static int fail(const struct mlk_error *e)
{
	mlk_error_print(mlk_progname, e);
	return e->status;
}

static int open_lake(struct ctx *c, const struct opts *o)
{
	struct mlk_error e = MLK_ERROR_INIT;
	c->o = o;
	c->quality = NULL;
	if (lake_open(o->lake, &c->lake, &e) != MLK_OK)
		return fail(&e);
	if (policy_identity(&c->lake, &c->id, &e) != MLK_OK) {
		lake_close(&c->lake);
		return fail(&e);
	}
	return 0;
}

static void close_lake(struct ctx *c)
{
	identity_release(&c->id);
	lake_close(&c->lake);
}

static void audit(struct ctx *c, const char *action, const char *zone,
		  const char *dataset, const struct decision *d,
		  const char *inputs, const char *outputs, const char *detail,
		  int *status)
{
	struct audit_event ev = {
		"mlk-snapshot", action, c->o->purpose, zone, dataset, d,
		inputs, outputs, detail, *status,
	};
	struct mlk_error e = MLK_ERROR_INIT;
	if (audit_append(&c->lake, &c->id, &ev, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		if (*status == MLK_OK || *status == MLK_PARTIAL)
			*status = e.status;
	}
}

/*
 * Ask the policy for action on zone/dataset; a denial (or a policy that
 * cannot be read) is audited and reported, and returns MLK_DENIED.
 */
static int allowed(struct ctx *c, const char *policy_action,
		   const char *audit_action, const char *zone,
		   const char *dataset, struct decision *d)
{
	struct mlk_error e = MLK_ERROR_INIT;
	if (policy_check(&c->lake, &c->id, policy_action, zone, dataset, d,
			 &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		memset(d, 0, sizeof *d);
		snprintf(d->rule, sizeof d->rule, "policy-error");
	}
	if (d->allow)
		return 0;
	int st = MLK_DENIED;
	audit(c, audit_action, zone, dataset, d, NULL, NULL, NULL, &st);
	mlk_warn("%s on %s/%s denied for user '%s' by policy rule '%s'",
		 policy_action, zone, dataset, c->id.user, d->rule);
	return MLK_DENIED;
}

static int out_write(void *ctx, const char *p, size_t n)
{
	int *ok = ctx;
	if (fwrite(p, 1, n, stdout) != n) {
		if (errno != EPIPE)
			mlk_warn("cannot write to stdout: %s", strerror(errno));
		*ok = 0;
		return 1;
	}
	return 0;
}

static int finish_stdout(int status)
{
	if (fflush(stdout) != 0 && errno != EPIPE) {
		mlk_warn("cannot write to stdout: %s", strerror(errno));
		if (status == MLK_OK)
			status = MLK_SYSTEM;
	}
	return status;
}

/* Load a snapshot and ask for action on its zone; 0 or an exit status. */
static int load_allowed(struct ctx *c, const char *id, const char *policy_action,
			const char *audit_action, struct snapshot *s,
			struct decision *d)
{
	struct mlk_error e = MLK_ERROR_INIT;
	if (snap_load(&c->lake, id, s, &e) != MLK_OK)
		return fail(&e);
	int rc = allowed(c, policy_action, audit_action, s->zone, s->dataset,
			 d);
	if (rc)
		snap_release(s);
	return rc;
}

/* ---- create and compact ---- */

static void on_reject(void *ctx, long long line, const char *why)
{
	(void)ctx;
	struct mlk_error e = MLK_ERROR_INIT;
	mlk_error_set(&e, MLK_PARTIAL, "-", line, "%s; left out", why);
	mlk_error_print(mlk_progname, &e);
}

static void summary(const struct snap_build *b, const char *verb)
{
	printf("{\"snapshot\":\"%s\",\"zone\":", b->id);
	struct buf t = BUF_INIT;
	buf_add_json_cstr(&t, b->zone);
	buf_addstr(&t, ",\"dataset\":");
	buf_add_json_cstr(&t, b->dataset);
	fputs(t.data, stdout);
	buf_release(&t);
	printf(",\"version\":%lld,\"records\":%llu,\"rejected\":%llu,"
	       "\"files\":%llu,\"new_files\":%llu,\"unchanged\":%s,"
	       "\"manifest_sha256\":\"%s\",\"verb\":\"%s\"}\n", b->version,
	       b->records, b->rejected, b->files, b->new_files,
	       b->existed ? "true" : "false", b->manifest_sha256, verb);
}

static int build_and_publish(struct ctx *c, struct snap_build *b,
			     enum mlk_status st, struct mlk_error *e,
			     const struct decision *d, const char *verb,
			     const char *action)
{
	int status = st == MLK_OK && b->rejected ? MLK_PARTIAL : (int)st;
	if (st == MLK_DENIED) {
		/* The policy engine allowed; the records did not qualify. */
		struct decision dd = *d;
		dd.allow = 0;
		snprintf(dd.rule, sizeof dd.rule, "deid-required");
		dd.role[0] = '\0';
		struct buf det = BUF_INIT;
		buf_addf(&det, "{\"verb\":\"%s\",\"line\":%lld}", verb,
			 b->denied_line);
		audit(c, action, b->zone, b->dataset, &dd, NULL, NULL,
		      det.data, &status);
		buf_release(&det);
		mlk_error_print(mlk_progname, e);
		mlk_warn("nothing was committed");
		return MLK_DENIED;
	}
	if (st != MLK_OK)
		return fail(e);
	struct buf out = BUF_INIT, det = BUF_INIT;
	buf_addf(&out, "[{\"snapshot\":\"%s\",\"manifest_sha256\":\"%s\","
		 "\"files\":%llu,\"records\":%llu}]", b->id,
		 b->manifest_sha256, b->files, b->records);
	buf_addf(&det, "{\"verb\":\"%s\",\"version\":%lld,\"new_files\":%llu,"
		 "\"rejected\":%llu,\"unchanged\":%s", verb, b->version,
		 b->new_files, b->rejected, b->existed ? "true" : "false");
	if (b->input_sha256[0])
		buf_addf(&det, ",\"input_digest\":\"%s\"", b->input_sha256);
	if (b->by_input)
		buf_addf(&det, ",\"known_by\":\"%s\"", b->by_stat ? "file"
			 : "digest");
	if (c->quality)
		buf_addf(&det, ",\"quality\":%s", c->quality);
	buf_addch(&det, '}');
	/* The event first, then the version: nothing lands unaudited. */
	int astatus = status;
	audit(c, action, b->zone, b->dataset, d,
	      b->inputs_json ? b->inputs_json : "[]", out.data, det.data,
	      &astatus);
	buf_release(&out);
	buf_release(&det);
	if (astatus != status) {
		mlk_warn("nothing was committed");
		return astatus;
	}
	if (snap_publish(b, e) != MLK_OK)
		return fail(e);
	summary(b, verb);
	if (!c->o->quiet) {
		if (b->existed)
			mlk_warn("%s/%s: unchanged, snapshot %s (version %lld) "
				 "already holds these records", b->zone,
				 b->dataset, b->id, b->version);
		else
			mlk_warn("%s/%s: snapshot %s (version %lld): %llu "
				 "records in %llu files, %llu new", b->zone,
				 b->dataset, b->id, b->version, b->records,
				 b->files, b->new_files);
	}
	return finish_stdout(status);
}

/* ---- quality gate (mlk-expect(5)) ---- */

struct gate {
	int fd;                 /* the records to snapshot, rewound */
	int gated;
	char *quality;          /* JSON for the manifest header */
	struct buf report;
};

static int gate_may_read(void *ctx, const char *zone, const char *dataset)
{
	struct decision d;
	return allowed(ctx, "read", "snapshot-read", zone, dataset, &d);
}

/* Make stdin readable twice: a regular file is rewound; anything else
 * is copied to an unlinked file in staging/, gone when we exit. */
static int gate_input(struct ctx *c, struct gate *g)
{
	struct stat sb;
	if (fstat(0, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    lseek(0, 0, SEEK_CUR) == 0)
		return 0;
	struct mlk_error e = MLK_ERROR_INIT;
	char *dir = lake_path(&c->lake, "staging");
	char *final = lake_path(&c->lake, "staging/expect-input");
	char *tmp = NULL;
	int fd = -1;
	int made = !fsio_is_dir(dir);
	enum mlk_status st = fsio_mkdirs(dir, 0755, &e);
	if (st == MLK_OK)
		st = fsio_temp_beside(final, &fd, &tmp, &e);
	if (st == MLK_OK && unlink(tmp) != 0)
		st = mlk_error_errno(&e, tmp, "cannot unlink");
	/* A refused snapshot leaves nothing, not even staging/. */
	if (made)
		rmdir(dir);
	static char chunk[1 << 16];
	while (st == MLK_OK) {
		ssize_t n = read(0, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			st = mlk_error_errno(&e, "-", "cannot read");
		if (n <= 0)
			break;
		st = fsio_write_all(fd, chunk, (size_t)n, "staging", &e);
	}
	if (st == MLK_OK && lseek(fd, 0, SEEK_SET) != 0)
		st = mlk_error_errno(&e, "staging", "cannot rewind");
	free(dir);
	free(final);
	free(tmp);
	if (st != MLK_OK) {
		if (fd >= 0)
			close(fd);
		return fail(&e);
	}
	g->fd = fd;
	return 0;
}

/*
 * Run the target dataset's expectations (catalog/expectations/<dataset>
 * .yaml; none: not gated) over the records before anything is prepared.
 * 0 to go on, with g->fd rewound; else an exit status.  A blocking
 * failure without --accept-failures is refused: audited, the report on
 * stdout, nothing written.
 */
static int quality_gate(struct ctx *c, const char *zone, const char *dataset,
			struct gate *g)
{
	memset(g, 0, sizeof *g);
	char *path = expect_path(&c->lake, dataset);
	if (!fsio_exists(path)) {
		free(path);
		return 0;
	}
	g->gated = 1;
	struct mlk_error e = MLK_ERROR_INIT;
	struct expect_set *s = NULL;
	enum mlk_status st = expect_load_file(path, &s, &e);
	free(path);
	if (st != MLK_OK)
		return fail(&e);
	int rc = gate_input(c, g);
	if (rc) {
		expect_free(s);
		return rc;
	}
	struct expect_env env = { &c->lake, lake_now(&c->lake), NULL,
				  gate_may_read, c };
	st = expect_prepare(s, &env, &e);
	if (st == MLK_OK)
		st = expect_run_fd(s, g->fd, "-", &e);
	if (st == MLK_OK)
		st = expect_finish(s, &e);
	if (st == MLK_OK && lseek(g->fd, 0, SEEK_SET) != 0)
		st = mlk_error_errno(&e, "-", "cannot rewind");
	if (st != MLK_OK) {
		expect_free(s);
		return e.msg[0] ? fail(&e) : (int)st;
	}
	struct buf extra = BUF_INIT, q = BUF_INIT, failed = BUF_INIT;
	buf_addstr(&extra, "\"zone\":");
	buf_add_json_cstr(&extra, zone);
	buf_addstr(&extra, ",\"dataset\":");
	buf_add_json_cstr(&extra, dataset);
	buf_addstr(&extra, ",\"source\":\"stdin\"");
	struct expect_summary sum;
	expect_report(s, "lines", extra.data, &g->report, &sum);
	expect_failed_names(s, &failed);
	expect_free(s);
	char hex[SHA256_HEX];
	sha256_hex_once(g->report.data, g->report.len, hex);
	buf_addf(&q, "{\"report_sha256\":\"%s\",\"pass\":%s,"
		 "\"records\":%llu,\"expectations\":%zu,\"failed\":%s", hex,
		 sum.pass ? "true" : "false", sum.records, sum.expectations,
		 failed.data);
	if (!sum.pass && c->o->accept) {
		buf_addstr(&q, ",\"accepted_failures\":");
		buf_add_json_cstr(&q, c->o->accept);
	}
	buf_addch(&q, '}');
	rc = 0;
	if (!sum.pass && !c->o->accept) {
		int status = MLK_PARTIAL;
		struct buf det = BUF_INIT;
		buf_addf(&det, "{\"verb\":\"create\",\"quality\":%s}", q.data);
		audit(c, "snapshot-refused", zone, dataset, NULL, NULL, NULL,
		      det.data, &status);
		buf_release(&det);
		fwrite(g->report.data, 1, g->report.len, stdout);
		mlk_warn("%s/%s: refused: %zu blocking expectations failed%s; "
			 "nothing was committed", zone, dataset,
			 sum.failed_blocking, sum.invalid ?
			 " or records were not JSON" : "");
		rc = finish_stdout(status);
	}
	g->quality = buf_detach(&q);
	buf_release(&extra);
	buf_release(&failed);
	return rc;
}

static void gate_release(struct gate *g)
{
	if (g->fd > 0)
		close(g->fd);
	free(g->quality);
	buf_release(&g->report);
}

/* The report beside the manifest: snapshots/<id>.quality.json. */
static void gate_store(struct ctx *c, const struct gate *g,
		       const struct snap_build *b)
{
	if (!g->gated || !b->id[0])
		return;
	char *p = lake_path(&c->lake, "snapshots/%s.quality.json", b->id);
	struct mlk_error e = MLK_ERROR_INIT;
	if (!fsio_exists(p) && fsio_write_atomic(p, g->report.data,
						 g->report.len, 0444, &e) !=
	    MLK_OK)
		mlk_error_print(mlk_progname, &e);
	free(p);
}

static int cmd_create(struct ctx *c)
{
	const struct opts *o = c->o;
	struct mlk_error e = MLK_ERROR_INIT;
	char *zone, *dataset;
	if (snap_target(o->args[0], &zone, &dataset, &e) != MLK_OK)
		return fail(&e);
	struct decision d;
	int rc = allowed(c, "write", "snapshot-create", zone, dataset, &d);
	struct gate g;
	if (!rc)
		rc = quality_gate(c, zone, dataset, &g);
	else
		memset(&g, 0, sizeof g);
	if (rc) {
		gate_release(&g);
		free(zone);
		free(dataset);
		return rc;
	}
	c->quality = g.quality;
	char *tool = xasprintf("mlk-snapshot %s", MLK_VERSION);
	struct snap_opts so = { zone, dataset, o->note, c->id.user, tool,
				o->append,
				(int)lake_conf_num(&c->lake, "snapshot",
						   "threads", 2), g.quality };
	struct snap_build b;
	enum mlk_status st = snap_prepare(&b, &c->lake, &so, g.fd, on_reject,
					  NULL, &e);
	rc = build_and_publish(c, &b, st, &e, &d, "create",
			       "snapshot-create");
	if (rc == MLK_OK || rc == MLK_PARTIAL)
		gate_store(c, &g, &b);
	snap_build_release(&b);
	gate_release(&g);
	c->quality = NULL;
	free(tool);
	free(zone);
	free(dataset);
	return rc;
}

static unsigned long long parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long mul = 1;
	if (*end == 'K' || *end == 'k')
		mul = 1ULL << 10;
	else if (*end == 'M' || *end == 'm')
		mul = 1ULL << 20;
	else if (*end == 'G' || *end == 'g')
		mul = 1ULL << 30;
	if (mul > 1)
		end++;
	if (!*s || *s < '0' || *s > '9' || *end || errno || !v ||
	    v > (1ULL << 44) / mul) {
		mlk_warn("--target-size wants a size such as 134217728 or "
			 "128M");
		usage(MLK_USAGE);
	}
	return v * mul;
}

static int cmd_compact(struct ctx *c)
{
	const struct opts *o = c->o;
	struct mlk_error e = MLK_ERROR_INIT;
	unsigned long long target = o->target ? parse_size(o->target) :
		(unsigned long long)lake_conf_num(&c->lake, "snapshot",
						  "target_file_mb", 128) << 20;
	char *zone, *dataset;
	if (snap_target(o->args[0], &zone, &dataset, &e) != MLK_OK)
		return fail(&e);
	struct decision d;
	int rc = allowed(c, "write", "snapshot-compact", zone, dataset, &d);
	if (rc) {
		free(zone);
		free(dataset);
		return rc;
	}
	char *tool = xasprintf("mlk-snapshot %s", MLK_VERSION);
	char *note = xasprintf("compacted to %llu bytes", target);
	struct snap_opts so = { zone, dataset, o->note ? o->note : note,
				c->id.user, tool, 0, 0, NULL };
	struct snap_build b;
	enum mlk_status st = snap_prepare_compact(&b, &c->lake, &so, target,
						  &e);
	if (st == MLK_OK && b.existed) {
		summary(&b, "compact");
		if (!o->quiet)
			mlk_warn("%s/%s: nothing to compact; snapshot %s stays "
				 "the latest", zone, dataset, b.id);
		rc = finish_stdout(MLK_OK);
	} else {
		rc = build_and_publish(c, &b, st, &e, &d, "compact",
				       "snapshot-compact");
	}
	snap_build_release(&b);
	free(note);
	free(tool);
	free(zone);
	free(dataset);
	return rc;
}

/* ---- list and show ---- */

static int cmd_list(struct ctx *c)
{
	const struct opts *o = c->o;
	struct mlk_error e = MLK_ERROR_INIT;
	char *zone = NULL, *dataset = NULL;
	if (o->nargs && snap_target(o->args[0], &zone, &dataset, &e) != MLK_OK)
		return fail(&e);
	struct snapshot *v;
	size_t n;
	if (snap_list(&c->lake, &v, &n, &e) != MLK_OK) {
		free(zone);
		free(dataset);
		return fail(&e);
	}
	int tty = mlk_isatty(1);
	if (tty)
		printf("%-25s %-28s %4s %-20s %10s %6s\n", "SNAPSHOT",
		       "DATASET", "VER", "CREATED", "RECORDS", "FILES");
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const struct snapshot *s = &v[i];
		if (zone && (strcmp(s->zone, zone) || strcmp(s->dataset, dataset)))
			continue;
		/* Only what the user may read; a listing is not audited. */
		struct decision d;
		struct mlk_error pe = MLK_ERROR_INIT;
		if (policy_check(&c->lake, &c->id, "read", s->zone, s->dataset,
				 &d, &pe) != MLK_OK || !d.allow)
			continue;
		buf_reset(&b);
		if (tty) {
			char ds[300];
			snprintf(ds, sizeof ds, "%s/%s", s->zone, s->dataset);
			printf("%-25s %-28s %4lld %-20s %10llu %6zu\n", s->id,
			       ds, s->version, s->created ? s->created : "",
			       s->records, s->nf);
			continue;
		}
		buf_addf(&b, "{\"snapshot\":\"%s\",\"zone\":", s->id);
		buf_add_json_cstr(&b, s->zone);
		buf_addstr(&b, ",\"dataset\":");
		buf_add_json_cstr(&b, s->dataset);
		buf_addf(&b, ",\"version\":%lld,\"created\":", s->version);
		buf_add_json_cstr(&b, s->created ? s->created : "");
		buf_addstr(&b, ",\"actor\":");
		buf_add_json_cstr(&b, s->actor ? s->actor : "");
		buf_addf(&b, ",\"records\":%llu,\"files\":%zu,\"parent\":",
			 s->records, s->nf);
		if (s->parent)
			buf_add_json_cstr(&b, s->parent);
		else
			buf_addstr(&b, "null");
		buf_addstr(&b, ",\"note\":");
		if (s->note)
			buf_add_json_cstr(&b, s->note);
		else
			buf_addstr(&b, "null");
		buf_addstr(&b, "}\n");
		fputs(b.data, stdout);
	}
	buf_release(&b);
	for (size_t i = 0; i < n; i++)
		snap_release(&v[i]);
	free(v);
	free(zone);
	free(dataset);
	return finish_stdout(MLK_OK);
}

static int cmd_show(struct ctx *c)
{
	struct snapshot s;
	struct decision d;
	int rc = load_allowed(c, c->o->args[0], "read", "snapshot-read", &s,
			      &d);
	if (rc)
		return rc;
	fwrite(s.bytes.data, 1, s.bytes.len, stdout);
	snap_release(&s);
	return finish_stdout(MLK_OK);
}

/* ---- cat and diff ---- */

static int cmd_cat(struct ctx *c)
{
	const struct opts *o = c->o;
	struct mlk_error e = MLK_ERROR_INIT;
	struct snap_where *w = NULL;
	if (o->where && snap_where_parse(o->where, &w, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		usage(MLK_USAGE);
	}
	struct snapshot s;
	struct decision d;
	int rc = load_allowed(c, o->args[0], "read", "snapshot-read", &s, &d);
	if (rc) {
		snap_where_free(w);
		return rc;
	}
	const char *unknown = snap_where_unknown(w, &s);
	if (unknown) {
		mlk_warn("--where: '%s' is not a partition column of %s "
			 "(partitions: %s)", unknown, s.id,
			 s.partitions ? s.partitions : "none");
		snap_release(&s);
		snap_where_free(w);
		return MLK_USAGE;
	}
	static char obuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	int ok = 1;
	unsigned long long n = 0;
	enum mlk_status st = snap_cat(&c->lake, &s, w, out_write, &ok, &n, &e);
	int status = finish_stdout(st);
	if (st != MLK_OK && ok)
		mlk_error_print(mlk_progname, &e);
	struct buf in = BUF_INIT, det = BUF_INIT;
	buf_addf(&in, "[{\"snapshot\":\"%s\",\"manifest_sha256\":\"%s\"}]",
		 s.id, s.manifest_sha256);
	buf_addf(&det, "{\"verb\":\"cat\",\"records\":%llu,\"filtered\":%s}",
		 n, w ? "true" : "false");
	audit(c, "snapshot-read", s.zone, s.dataset, &d, in.data, NULL,
	      det.data, &status);
	buf_release(&in);
	buf_release(&det);
	snap_release(&s);
	snap_where_free(w);
	return status;
}

struct diff_pass {
	struct drift *d;
	int pass, side;
};

static int diff_line(void *ctx, const char *line, size_t len)
{
	struct diff_pass *p = ctx;
	drift_record(p->d, p->pass, p->side, line, len);
	return 0;
}

static void file_diff(const struct snapshot *x, const struct snapshot *y,
		      const char *change, struct buf *out, size_t *count)
{
	for (size_t i = 0; i < x->nf; i++) {
		int found = 0;
		for (size_t k = 0; k < y->nf && !found; k++)
			found = !strcmp(x->f[i].sha256, y->f[k].sha256) &&
				!strcmp(x->f[i].path, y->f[k].path);
		if (found)
			continue;
		(*count)++;
		buf_addf(out, "{\"diff\":\"file\",\"change\":\"%s\",\"path\":",
			 change);
		buf_add_json_cstr(out, x->f[i].path);
		buf_addstr(out, ",\"partition\":");
		buf_add_json_cstr(out, x->f[i].partition);
		buf_addf(out, ",\"records\":%llu}\n", x->f[i].records);
	}
}

static int cmd_diff(struct ctx *c)
{
	const struct opts *o = c->o;
	double threshold = 0.2;
	if (o->threshold) {
		char *end;
		threshold = strtod(o->threshold, &end);
		if (!*o->threshold || *end || !(threshold >= 0)) {
			mlk_warn("--threshold wants a number of at least 0");
			usage(MLK_USAGE);
		}
	}
	struct snapshot s[2];
	struct decision d[2];
	int rc = load_allowed(c, o->args[0], "read", "snapshot-read", &s[0],
			      &d[0]);
	if (rc)
		return rc;
	rc = load_allowed(c, o->args[1], "read", "snapshot-read", &s[1], &d[1]);
	if (rc) {
		snap_release(&s[0]);
		return rc;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct drift *dr = drift_new();
	enum mlk_status st = MLK_OK;
	for (int pass = 0; pass < 2 && st == MLK_OK; pass++)
		for (int side = 0; side < 2 && st == MLK_OK; side++) {
			struct diff_pass p = { dr, pass, side };
			st = snap_each_line(&c->lake, &s[side], diff_line, &p,
					    &e);
		}
	int status = st;
	if (st == MLK_OK) {
		struct buf out = BUF_INIT;
		size_t added = 0, removed = 0;
		file_diff(&s[1], &s[0], "added", &out, &added);
		file_diff(&s[0], &s[1], "removed", &out, &removed);
		struct drift_totals t;
		drift_report(dr, threshold, &out, &t);
		buf_addf(&out, "{\"diff\":\"summary\",\"a\":\"%s\",\"b\":\"%s\","
			 "\"files_added\":%zu,\"files_removed\":%zu,"
			 "\"records_a\":%llu,\"records_b\":%llu,"
			 "\"records_added\":%llu,\"records_removed\":%llu,"
			 "\"fields\":%zu,\"fields_drifted\":%zu,"
			 "\"threshold\":%g}\n", s[0].id, s[1].id, added,
			 removed, t.records[0], t.records[1], t.added,
			 t.removed, t.fields, t.flagged, threshold);
		fwrite(out.data, 1, out.len, stdout);
		buf_release(&out);
		status = finish_stdout(MLK_OK);
	} else {
		mlk_error_print(mlk_progname, &e);
	}
	drift_free(dr);
	struct buf in = BUF_INIT;
	buf_addf(&in, "[{\"snapshot\":\"%s\"},{\"snapshot\":\"%s\"}]", s[0].id,
		 s[1].id);
	audit(c, "snapshot-read", s[1].zone, s[1].dataset, &d[1], in.data,
	      NULL, "{\"verb\":\"diff\"}", &status);
	buf_release(&in);
	snap_release(&s[0]);
	snap_release(&s[1]);
	return status;
}

/* ---- verify ---- */

static void on_bad(void *ctx, const char *file, const char *what)
{
	(void)ctx;
	struct mlk_error e = MLK_ERROR_INIT;
	mlk_error_set(&e, MLK_INTEGRITY, file, 0, "%s", what);
	mlk_error_print(mlk_progname, &e);
}

static int verify_one(struct ctx *c, struct snapshot *s, int *status)
{
	struct mlk_error e = MLK_ERROR_INIT;
	unsigned long long bytes = 0;
	int threads = (int)lake_conf_num(&c->lake, "snapshot", "threads", 2);
	enum mlk_status st = snap_verify(&c->lake, s, threads, on_bad, NULL,
					 &bytes, &e);
	printf("{\"snapshot\":\"%s\",\"files\":%zu,\"bytes\":%llu,\"ok\":%s}\n",
	       s->id, s->nf, bytes, st == MLK_OK ? "true" : "false");
	if (st != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		if (*status == MLK_OK || st == MLK_INTEGRITY)
			*status = st;
	}
	struct buf in = BUF_INIT, det = BUF_INIT;
	buf_addf(&in, "[{\"snapshot\":\"%s\",\"manifest_sha256\":\"%s\"}]",
		 s->id, s->manifest_sha256);
	buf_addf(&det, "{\"verb\":\"verify\",\"ok\":%s,\"bytes\":%llu}",
		 st == MLK_OK ? "true" : "false", bytes);
	int ast = st;
	audit(c, "snapshot-verify", s->zone, s->dataset, NULL, in.data, NULL,
	      det.data, &ast);
	buf_release(&in);
	buf_release(&det);
	return 0;
}

static int cmd_verify(struct ctx *c)
{
	const struct opts *o = c->o;
	if (!!o->all == !!o->nargs) {
		mlk_warn("verify wants one ID or --all");
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	int status = MLK_OK;
	if (!o->all) {
		struct snapshot s;
		struct decision d;
		int rc = load_allowed(c, o->args[0], "read", "snapshot-verify",
				      &s, &d);
		if (rc)
			return rc;
		verify_one(c, &s, &status);
		snap_release(&s);
		return finish_stdout(status);
	}
	/* --all: a manifest that does not load is itself a failure. */
	struct snapshot *v;
	size_t n;
	if (snap_list(&c->lake, &v, &n, &e) != MLK_OK)
		return fail(&e);
	for (size_t i = 0; i < n; i++) {
		struct decision d;
		if (allowed(c, "read", "snapshot-verify", v[i].zone,
			    v[i].dataset, &d) != 0)
			status = status == MLK_INTEGRITY ? status : MLK_DENIED;
		else
			verify_one(c, &v[i], &status);
		snap_release(&v[i]);
	}
	free(v);
	return finish_stdout(status);
}

/* ---- export and checkout ---- */

static int cmd_export(struct ctx *c)
{
	const struct opts *o = c->o;
	if (!o->format || !o->output) {
		mlk_warn("export needs --format and -o FILE");
		usage(MLK_USAGE);
	}
	int fmt = export_format_parse(o->format);
	if (fmt < 0) {
		mlk_warn("--format wants tar, tar.gz or zip");
		usage(MLK_USAGE);
	}
	struct snapshot s;
	struct decision d;
	int rc = load_allowed(c, o->args[0], "export", "snapshot-export", &s,
			      &d);
	if (rc)
		return rc;
	struct mlk_error e = MLK_ERROR_INIT;
	char sha[SHA256_HEX] = "";
	unsigned long long size = 0;
	enum mlk_status st = export_snapshot(&c->lake, &s, fmt, o->output,
					     sha, &size, &e);
	int status = st;
	struct buf in = BUF_INIT, out = BUF_INIT, det = BUF_INIT;
	buf_addf(&in, "[{\"snapshot\":\"%s\",\"manifest_sha256\":\"%s\"}]",
		 s.id, s.manifest_sha256);
	if (st == MLK_OK)
		buf_addf(&out, "[{\"archive_sha256\":\"%s\",\"bytes\":%llu}]",
			 sha, size);
	buf_addf(&det, "{\"verb\":\"export\",\"format\":\"%s\"}", o->format);
	audit(c, "snapshot-export", s.zone, s.dataset, &d, in.data,
	      st == MLK_OK ? out.data : NULL, det.data, &status);
	if (st != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
	} else {
		printf("{\"snapshot\":\"%s\",\"format\":\"%s\",\"sha256\":"
		       "\"%s\",\"bytes\":%llu}\n", s.id, o->format, sha, size);
		status = finish_stdout(status);
	}
	buf_release(&in);
	buf_release(&out);
	buf_release(&det);
	snap_release(&s);
	return status;
}

static int cmd_checkout(struct ctx *c)
{
	const struct opts *o = c->o;
	struct snapshot s;
	struct decision d;
	int rc = load_allowed(c, o->args[0], "sandbox", "snapshot-checkout",
			      &s, &d);
	if (rc)
		return rc;
	struct mlk_error e = MLK_ERROR_INIT;
	size_t linked = 0, copied = 0;
	enum mlk_status st = snap_checkout(&c->lake, &s, o->args[1], &linked,
					   &copied, &e);
	int status = st;
	struct buf in = BUF_INIT, det = BUF_INIT;
	buf_addf(&in, "[{\"snapshot\":\"%s\",\"manifest_sha256\":\"%s\"}]",
		 s.id, s.manifest_sha256);
	buf_addf(&det, "{\"verb\":\"checkout\",\"linked\":%zu,\"copied\":%zu}",
		 linked, copied);
	audit(c, "snapshot-checkout", s.zone, s.dataset, &d, in.data, NULL,
	      det.data, &status);
	if (st != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
	} else {
		printf("{\"snapshot\":\"%s\",\"files\":%zu,\"linked\":%zu,"
		       "\"copied\":%zu}\n", s.id, s.nf, linked, copied);
		status = finish_stdout(status);
	}
	buf_release(&in);
	buf_release(&det);
	snap_release(&s);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lake", required_argument, NULL, 'L' },
		{ "note", required_argument, NULL, 'n' },
		{ "append", no_argument, NULL, 'a' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "where", required_argument, NULL, 'w' },
		{ "threshold", required_argument, NULL, 't' },
		{ "all", no_argument, NULL, 'A' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "target-size", required_argument, NULL, 'T' },
		{ "accept-failures", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* Which options each subcommand takes, and how many arguments. */
	static const struct {
		const char *name, *opts;
		int (*run)(struct ctx *);
		int minargs, maxargs;
	} cmds[] = {
		{ "create", "LnapqF", cmd_create, 1, 1 },
		{ "list", "L", cmd_list, 0, 1 },
		{ "show", "L", cmd_show, 1, 1 },
		{ "cat", "Lwp", cmd_cat, 1, 1 },
		{ "diff", "Ltp", cmd_diff, 2, 2 },
		{ "verify", "LA", cmd_verify, 0, 1 },
		{ "export", "Lfop", cmd_export, 1, 1 },
		{ "checkout", "Lp", cmd_checkout, 2, 2 },
		{ "compact", "LTpqn", cmd_compact, 1, 1 },
	};
	mlk_progname = "mlk-snapshot";
	if (argc < 2)
		usage(MLK_USAGE);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		usage(0);
	if (!strcmp(argv[1], "--version")) {
		puts("mlk-snapshot " MLK_VERSION);
		return 0;
	}
	size_t ci = 0;
	while (ci < sizeof cmds / sizeof cmds[0] &&
	       strcmp(cmds[ci].name, argv[1]))
		ci++;
	if (ci == sizeof cmds / sizeof cmds[0]) {
		mlk_warn("unknown command '%s'", argv[1]);
		usage(MLK_USAGE);
	}
	struct opts o;
	memset(&o, 0, sizeof o);
	int c;
	opterr = 0;
	argv[1] = argv[0];
	argc--;
	argv++;
	int li = -1;
	while ((c = getopt_long(argc, argv, ":o:", opts, &li)) != -1) {
		/* Named as given: after "--opt VALUE" argv[optind - 1] is VALUE. */
		char name[64];
		if (li >= 0)
			snprintf(name, sizeof name, "--%s", opts[li].name);
		else
			snprintf(name, sizeof name, "%s", c == '?' || c == ':' ?
				 argv[optind - 1] : "-o");
		li = -1;
		if (c == 'h')
			usage(0);
		if (c == 'V') {
			puts("mlk-snapshot " MLK_VERSION);
			return 0;
		}
		if (c == ':') {
			mlk_warn("option '%s' needs a value", name);
			usage(MLK_USAGE);
		}
		if (c == '?' || !strchr(cmds[ci].opts, c)) {
			mlk_warn("%s option '%s' for %s", c == '?' ? "unknown"
				 : "no", name, cmds[ci].name);
			usage(MLK_USAGE);
		}
		switch (c) {
		case 'L': o.lake = optarg; break;
		case 'n': o.note = optarg; break;
		case 'a': o.append = 1; break;
		case 'p': o.purpose = optarg; break;
		case 'q': o.quiet = 1; break;
		case 'w': o.where = optarg; break;
		case 't': o.threshold = optarg; break;
		case 'A': o.all = 1; break;
		case 'f': o.format = optarg; break;
		case 'o': o.output = optarg; break;
		case 'T': o.target = optarg; break;
		case 'F': o.accept = optarg; break;
		}
	}
	o.nargs = argc - optind;
	o.args = argv + optind;
	if (o.nargs > cmds[ci].maxargs) {
		mlk_warn("unexpected argument '%s'", o.args[cmds[ci].maxargs]);
		usage(MLK_USAGE);
	}
	if (o.nargs < cmds[ci].minargs) {
		mlk_warn("%s needs %s", cmds[ci].name,
			 cmds[ci].minargs == 2 ? "two arguments"
					       : "an argument");
		usage(MLK_USAGE);
	}
	if (o.accept && (!*o.accept || strlen(o.accept) > 256)) {
		mlk_warn("--accept-failures wants a reference of 1 to 256 "
			 "bytes");
		return MLK_USAGE;
	}
	if (o.note && strlen(o.note) > 4096) {
		mlk_warn("--note is longer than 4096 bytes");
		return MLK_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	struct ctx ctx;
	int rc = open_lake(&ctx, &o);
	if (rc)
		return rc;
	rc = cmds[ci].run(&ctx);
	close_lake(&ctx);
	return rc;
}
