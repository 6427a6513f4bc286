/*
 * mlk-snapshot — immutable, content-addressed dataset versions: create,
 * list, show, cat, diff, verify, export, checkout, compact; and their
 * lifecycle: tier, gc, hold, release, retention, sandbox.
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
#include "catalog.h"
#include "drift.h"
#include "expect.h"
#include "export.h"
#include "fsio.h"
#include "lake.h"
#include "lifecycle.h"
#include "policy.h"
#include "sandbox.h"
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
"       mlk-snapshot tier [--lake DIR] [--apply] [--purpose TEXT]\n"
"       mlk-snapshot gc [--lake DIR] [--apply] [--purpose TEXT]\n"
"       mlk-snapshot hold [--lake DIR] --reason REF [--purpose TEXT]\n"
"                    ID|ZONE/DATASET\n"
"       mlk-snapshot release [--lake DIR] --reason REF [--purpose TEXT]\n"
"                    ID|ZONE/DATASET\n"
"       mlk-snapshot retention [--lake DIR] ID|ZONE/DATASET\n"
"       mlk-snapshot sandbox create [--lake DIR] --for USER|GROUP\n"
"                    --expires DURATION [--purpose TEXT] ID\n"
"       mlk-snapshot sandbox list|expire|verify [--lake DIR]\n"
"       mlk-snapshot sandbox extend [--lake DIR] --expires DURATION SANDBOX\n"
"       mlk-snapshot sandbox revoke [--lake DIR] [--purpose TEXT] SANDBOX\n"
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
"  --apply               carry out the tier or gc plan (default: print it)\n"
"  --reason REF          the legal reference of a hold or release\n"
"  --for USER|GROUP      who may read the sandbox (user:NAME, group:NAME)\n"
"  --expires DURATION    sandbox lifetime from now: 72h, 30d, 90m, 600s\n"
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
	const char *reason, *who, *expires;     /* lifecycle verbs */
	int append, quiet, all, apply;
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
 * Ask the policy for action on zone/dataset (both NULL: the whole lake);
 * a denial (or a policy that cannot be read) is audited and reported, and
 * returns MLK_DENIED.
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
	if (zone)
		mlk_warn("%s on %s/%s denied for user '%s' by policy rule "
			 "'%s'", policy_action, zone, dataset, c->id.user,
			 d->rule);
	else
		mlk_warn("%s on the lake denied for user '%s' by policy rule "
			 "'%s'", policy_action, c->id.user, d->rule);
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
	/* The version is published; the catalog lists it (a summary that
	 * `mlk-catalog refresh` can rebuild, so a failure only warns). */
	struct mlk_error ce = MLK_ERROR_INIT;
	if (catalog_note_snapshot(&c->lake, b->id, c->id.user,
				  lake_now(&c->lake), &ce) != MLK_OK) {
		mlk_error_print(mlk_progname, &ce);
		mlk_warn("catalog entry of %s not updated", b->dataset);
	}
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

/* ---- lifecycle: tiers, holds, gc, retention, sandboxes ---- */

/* Ask for a lake-wide action (tier, gc); a denial is audited. */
static int allowed_lake(struct ctx *c, const char *policy_action,
			const char *audit_action, struct decision *d)
{
	return allowed(c, policy_action, audit_action, NULL, NULL, d);
}

static int open_lc(struct ctx *c, struct lifecycle *lc)
{
	struct mlk_error e = MLK_ERROR_INIT;
	if (lc_open(&c->lake, lc, &e) != MLK_OK)
		return fail(&e);
	return 0;
}

static int cmd_tier(struct ctx *c)
{
	const struct opts *o = c->o;
	struct decision d;
	int rc = allowed_lake(c, "admin", "lifecycle-tier", &d);
	if (rc)
		return rc;
	struct lifecycle lc;
	if ((rc = open_lc(c, &lc)))
		return rc;
	struct mlk_error e = MLK_ERROR_INIT;
	int lock = -1;
	size_t cleaned = 0;
	enum mlk_status st = MLK_OK;
	/* One applying run at a time; it first clears what a killed one
	 * left half-copied. */
	if (o->apply) {
		st = lc_lock(&c->lake, &lock, &e);
		if (st == MLK_OK)
			st = lc_tier_cleanup(&lc, &cleaned, &e);
	}
	time_t now = lake_now(&c->lake);
	struct lc_move *v = NULL;
	size_t n = 0, moved = 0;
	unsigned long long bytes = 0;
	if (st == MLK_OK)
		st = lc_tier_plan(&lc, now, &v, &n, &e);
	struct buf b = BUF_INIT;
	for (size_t i = 0; st == MLK_OK && i < n; i++) {
		const struct lc_move *m = &v[i];
		if (o->apply) {
			st = lc_tier_move(&lc, m, &e);
			if (st != MLK_OK)
				break;
			moved++;
			bytes += m->size;
		}
		buf_reset(&b);
		buf_addf(&b, "{\"blob\":\"sha256:%s\",\"from\":\"%s\","
			 "\"to\":\"%s\",\"bytes\":%llu,\"reason\":",
			 m->sha256, lc.tier[m->from].name, lc.tier[m->to].name,
			 m->size);
		buf_add_json_cstr(&b, m->reason);
		buf_addf(&b, ",\"moved\":%s}\n", o->apply ? "true" : "false");
		fputs(b.data, stdout);
		fflush(stdout);
	}
	int status = st;
	if (st != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	buf_reset(&b);
	buf_addf(&b, "{\"verb\":\"tier\",\"apply\":%s,\"planned\":%zu,"
		 "\"moved\":%zu,\"bytes\":%llu,\"temps_removed\":%zu}",
		 o->apply ? "true" : "false", n, moved, bytes, cleaned);
	audit(c, "lifecycle-tier", NULL, NULL, &d, NULL, NULL, b.data,
	      &status);
	buf_release(&b);
	if (lock >= 0)
		fsio_unlock(lock);
	free(v);
	lc_close(&lc);
	return finish_stdout(status);
}

static int cmd_gc(struct ctx *c)
{
	const struct opts *o = c->o;
	struct decision d;
	int rc = allowed_lake(c, "admin", "lifecycle-gc", &d);
	if (rc)
		return rc;
	struct lifecycle lc;
	if ((rc = open_lc(c, &lc)))
		return rc;
	struct mlk_error e = MLK_ERROR_INIT;
	int lock = -1;
	enum mlk_status st = MLK_OK;
	if (o->apply)
		st = lc_lock(&c->lake, &lock, &e);
	struct lc_gc *v = NULL;
	size_t n = 0, removed = 0;
	unsigned long long bytes = 0;
	if (st == MLK_OK)
		st = lc_gc_plan(&lc, lake_now(&c->lake), &v, &n, &e);
	struct buf b = BUF_INIT;
	for (size_t i = 0; st == MLK_OK && i < n; i++) {
		const struct lc_gc *g = &v[i];
		if (o->apply) {
			st = lc_gc_remove(g, &e);
			if (st != MLK_OK)
				break;
			removed++;
			bytes += g->size;
		}
		const char *base = strrchr(g->path, '/');
		buf_reset(&b);
		buf_addstr(&b, "{\"blob\":");
		if (g->sha256[0])
			buf_addf(&b, "\"sha256:%s\"", g->sha256);
		else
			buf_addstr(&b, "null");
		buf_addstr(&b, ",\"file\":");
		buf_add_json_cstr(&b, base ? base + 1 : g->path);
		buf_addf(&b, ",\"tier\":\"%s\",\"bytes\":%llu,\"age_days\":%lld,"
			 "\"reason\":\"%s\",\"removed\":%s}\n",
			 lc.tier[g->tier].name, g->size, g->age_days,
			 g->reason, o->apply ? "true" : "false");
		fputs(b.data, stdout);
	}
	int status = st;
	if (st != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	buf_reset(&b);
	buf_addf(&b, "{\"verb\":\"gc\",\"apply\":%s,\"planned\":%zu,"
		 "\"removed\":%zu,\"bytes\":%llu}", o->apply ? "true" : "false",
		 n, removed, bytes);
	audit(c, "lifecycle-gc", NULL, NULL, &d, NULL, NULL, b.data, &status);
	buf_release(&b);
	if (lock >= 0)
		fsio_unlock(lock);
	lc_gc_free(v, n);
	lc_close(&lc);
	return finish_stdout(status);
}

/*
 * A hold's target: a snapshot id, or ZONE/DATASET that exists.  Fills
 * zone and dataset (malloc'd); 0 or an exit status.
 */
static int hold_target(struct ctx *c, const char *arg, char **zone,
		       char **dataset, time_t *created)
{
	struct mlk_error e = MLK_ERROR_INIT;
	*created = 0;
	if (!strchr(arg, '/')) {
		struct snapshot s;
		if (snap_load(&c->lake, arg, &s, &e) != MLK_OK)
			return fail(&e);
		*zone = xstrdup(s.zone);
		*dataset = xstrdup(s.dataset);
		*created = lc_time_parse(s.created);
		snap_release(&s);
		return 0;
	}
	const char *slash = strchr(arg, '/');
	*zone = xstrndup(arg, (size_t)(slash - arg));
	*dataset = xstrdup(slash + 1);
	char *dir = NULL;
	if (lake_zone_valid(*zone) && lake_dataset_valid(*dataset))
		dir = lake_path(&c->lake, "%s/%s", *zone, *dataset);
	int ok = dir && fsio_is_dir(dir);
	free(dir);
	if (ok)
		return 0;
	mlk_warn("'%s' is neither a snapshot id nor a dataset of the lake "
		 "(ZONE/DATASET)", arg);
	free(*zone);
	free(*dataset);
	return MLK_USAGE;
}

static int reason_ok(const char *r)
{
	if (!r || !*r || strlen(r) > 256) {
		mlk_warn("--reason wants a reference of 1 to 256 bytes");
		return 0;
	}
	for (const char *p = r; *p; p++)
		if ((unsigned char)*p < 0x20) {
			mlk_warn("--reason holds a control character");
			return 0;
		}
	return 1;
}

static int hold_or_release(struct ctx *c, int hold)
{
	const struct opts *o = c->o;
	if (!reason_ok(o->reason))
		usage(MLK_USAGE);
	const char *target = o->args[0];
	char *zone, *dataset;
	time_t created;
	int rc = hold_target(c, target, &zone, &dataset, &created);
	if (rc)
		return rc;
	const char *action = hold ? "lifecycle-hold" : "lifecycle-release";
	struct decision d;
	rc = allowed(c, "admin", action, zone, dataset, &d);
	if (rc) {
		free(zone);
		free(dataset);
		return rc;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	int flag = 0;
	enum mlk_status st;
	if (hold)
		st = lc_hold_add(&c->lake, target, zone, dataset, o->reason,
				 c->id.user, lake_now(&c->lake), &flag, &e);
	else
		st = lc_hold_release(&c->lake, target, o->reason, &flag, &e);
	if (st == MLK_OK && !hold && !flag)
		st = mlk_error_set(&e, MLK_USAGE, NULL, 0,
				   "%s has no hold with that reason", target);
	int status = st;
	struct buf det = BUF_INIT;
	buf_addf(&det, "{\"verb\":\"%s\",\"target\":", hold ? "hold"
							      : "release");
	buf_add_json_cstr(&det, target);
	buf_addstr(&det, ",\"reason\":");
	buf_add_json_cstr(&det, o->reason);
	buf_addf(&det, ",\"changed\":%s}", st == MLK_OK && (hold ? !flag : flag)
		 ? "true" : "false");
	audit(c, action, zone, dataset, &d, NULL, NULL, det.data, &status);
	if (st != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
	} else {
		struct buf b = BUF_INIT;
		buf_addstr(&b, "{\"target\":");
		buf_add_json_cstr(&b, target);
		buf_addstr(&b, ",\"reason\":");
		buf_add_json_cstr(&b, o->reason);
		buf_addf(&b, ",\"held\":%s,\"unchanged\":%s}\n",
			 hold ? "true" : "false", hold && flag ? "true"
							       : "false");
		fputs(b.data, stdout);
		buf_release(&b);
		status = finish_stdout(status);
	}
	buf_release(&det);
	free(zone);
	free(dataset);
	return status;
}

static int cmd_hold(struct ctx *c)
{
	return hold_or_release(c, 1);
}

static int cmd_release(struct ctx *c)
{
	return hold_or_release(c, 0);
}

static void add_time(struct buf *b, const char *key, time_t t)
{
	buf_addf(b, ",\"%s\":", key);
	if (!t) {
		buf_addstr(b, "null");
		return;
	}
	char ts[32];
	lake_time_iso(t, ts);
	buf_addf(b, "\"%s\"", ts);
}

static int cmd_retention(struct ctx *c)
{
	const char *target = c->o->args[0];
	char *zone, *dataset;
	time_t created;
	int rc = hold_target(c, target, &zone, &dataset, &created);
	if (rc)
		return rc;
	struct decision d;
	rc = allowed(c, "read", "snapshot-read", zone, dataset, &d);
	struct lifecycle lc;
	if (!rc)
		rc = open_lc(c, &lc);
	if (rc) {
		free(zone);
		free(dataset);
		return rc;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct lc_hold *hv = NULL;
	size_t hn = 0;
	if (lc_holds_load(&c->lake, &hv, &hn, &e) != MLK_OK) {
		lc_close(&lc);
		free(zone);
		free(dataset);
		return fail(&e);
	}
	int snap = !strchr(target, '/');
	/* A dataset is kept as long as its newest version. */
	struct snapshot latest;
	int found = 0;
	if (!snap && snap_latest(&c->lake, zone, dataset, &latest, &found,
				 &e) == MLK_OK && found) {
		created = lc_time_parse(latest.created);
		snap_release(&latest);
	}
	size_t holds = lc_held(hv, hn, snap ? target : NULL, zone, dataset);
	struct lc_status st;
	lc_status_of(&lc, zone, dataset, created, holds, lake_now(&c->lake),
		     &st);
	const struct lc_class *cl = lc_class_find(&lc, st.cls);
	struct buf b = BUF_INIT;
	buf_addstr(&b, snap ? "{\"snapshot\":" : "{\"target\":");
	buf_add_json_cstr(&b, target);
	buf_addstr(&b, ",\"zone\":");
	buf_add_json_cstr(&b, zone);
	buf_addstr(&b, ",\"dataset\":");
	buf_add_json_cstr(&b, dataset);
	buf_addstr(&b, ",\"class\":");
	buf_add_json_cstr(&b, st.cls);
	buf_addstr(&b, ",\"tier\":");
	if (cl)
		buf_add_json_cstr(&b, cl->tier);
	else
		buf_addstr(&b, "null");
	buf_addstr(&b, ",\"jurisdiction\":");
	buf_add_json_cstr(&b, st.jurisdiction);
	add_time(&b, "created", st.created);
	add_time(&b, "retain_until", st.min_until);
	add_time(&b, "delete_by", st.max_until);
	buf_addf(&b, ",\"held\":%s,\"holds\":[", st.holds ? "true" : "false");
	int first = 1;
	for (size_t i = 0; i < hn; i++) {
		if (!lc_held(&hv[i], 1, snap ? target : NULL, zone, dataset))
			continue;
		buf_addstr(&b, first ? "{\"target\":" : ",{\"target\":");
		first = 0;
		buf_add_json_cstr(&b, hv[i].target);
		buf_addstr(&b, ",\"reason\":");
		buf_add_json_cstr(&b, hv[i].reason);
		buf_addstr(&b, ",\"by\":");
		buf_add_json_cstr(&b, hv[i].by);
		buf_addstr(&b, ",\"since\":");
		buf_add_json_cstr(&b, hv[i].since);
		buf_addch(&b, '}');
	}
	buf_addf(&b, "],\"deletion\":\"%s\"}\n", st.deletion);
	fputs(b.data, stdout);
	buf_release(&b);
	lc_holds_free(hv, hn);
	lc_close(&lc);
	free(zone);
	free(dataset);
	return finish_stdout(MLK_OK);
}

/* ---- sandboxes ---- */

static void sb_json(const struct sandbox *sb, time_t now, int files,
		    struct buf *b)
{
	buf_addf(b, "{\"sandbox\":\"%s\",\"snapshot\":", sb->id);
	buf_add_json_cstr(b, sb->snapshot);
	buf_addstr(b, ",\"zone\":");
	buf_add_json_cstr(b, sb->zone);
	buf_addstr(b, ",\"dataset\":");
	buf_add_json_cstr(b, sb->dataset);
	buf_addstr(b, ",\"for\":");
	buf_add_json_cstr(b, sb->who);
	buf_addstr(b, ",\"by\":");
	buf_add_json_cstr(b, sb->by);
	buf_addstr(b, ",\"created\":");
	buf_add_json_cstr(b, sb->created);
	buf_addstr(b, ",\"expires\":");
	buf_add_json_cstr(b, sb->expires);
	buf_addstr(b, ",\"purpose\":");
	buf_add_json_cstr(b, sb->purpose);
	buf_addstr(b, ",\"state\":");
	buf_add_json_cstr(b, sb->state);
	buf_addf(b, ",\"expired\":%s,\"files\":%s}\n",
		 sb_expired(sb, now) ? "true" : "false",
		 files ? "true" : "false");
}

static void sb_audit(struct ctx *c, const char *action,
		     const struct sandbox *sb, const struct decision *d,
		     const char *verb, int *status)
{
	struct buf in = BUF_INIT, det = BUF_INIT;
	if (sb && sb->snapshot)
		buf_addf(&in, "[{\"snapshot\":\"%s\",\"sandbox\":\"%s\"}]",
			 sb->snapshot, sb->id);
	buf_addf(&det, "{\"verb\":\"%s\"", verb);
	if (sb && sb->who) {
		buf_addstr(&det, ",\"for\":");
		buf_add_json_cstr(&det, sb->who);
		buf_addstr(&det, ",\"expires\":");
		buf_add_json_cstr(&det, sb->expires);
		buf_addstr(&det, ",\"state\":");
		buf_add_json_cstr(&det, sb->state);
	}
	buf_addch(&det, '}');
	audit(c, action, sb ? sb->zone : NULL, sb ? sb->dataset : NULL, d,
	      in.len ? in.data : NULL, NULL, det.data, status);
	buf_release(&in);
	buf_release(&det);
}

static long long want_duration(const char *s)
{
	long long secs = lc_duration(s);
	if (secs <= 0) {
		mlk_warn("--expires wants a duration such as 72h, 30d or 90m");
		usage(MLK_USAGE);
	}
	return secs;
}

static int sb_create_cmd(struct ctx *c)
{
	const struct opts *o = c->o;
	if (c->o->nargs != 2 || !o->who || !o->expires) {
		mlk_warn("sandbox create needs ID, --for and --expires");
		usage(MLK_USAGE);
	}
	long long secs = want_duration(o->expires);
	struct mlk_error e = MLK_ERROR_INIT;
	char *who;
	long long uid, gid;
	if (sb_resolve(o->who, &who, &uid, &gid, &e) != MLK_OK)
		return fail(&e);
	struct snapshot s;
	struct decision d;
	int rc = load_allowed(c, o->args[1], "sandbox", "sandbox-create", &s,
			      &d);
	if (rc) {
		free(who);
		return rc;
	}
	int lock = -1;
	struct sandbox sb;
	memset(&sb, 0, sizeof sb);
	size_t linked = 0, copied = 0;
	enum mlk_status st = sb_lock(&c->lake, &lock, &e);
	if (st == MLK_OK)
		st = sb_create(&c->lake, &s, who, uid, gid, secs, o->purpose,
			       c->id.user, lake_now(&c->lake), &sb, &linked,
			       &copied, &e);
	if (lock >= 0)
		fsio_unlock(lock);
	int status = st;
	if (st != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		sb_release(&sb);
		sb.zone = xstrdup(s.zone);
		sb.dataset = xstrdup(s.dataset);
	}
	sb_audit(c, "sandbox-create", &sb, &d, "create", &status);
	if (st == MLK_OK) {
		struct buf b = BUF_INIT;
		sb_json(&sb, lake_now(&c->lake), 1, &b);
		/* linked and copied go before the closing brace */
		buf_truncate(&b, b.len - 2);
		buf_addf(&b, ",\"linked\":%zu,\"copied\":%zu}\n", linked,
			 copied);
		fputs(b.data, stdout);
		buf_release(&b);
		status = finish_stdout(status);
	}
	sb_release(&sb);
	snap_release(&s);
	free(who);
	return status;
}

static int sb_list_cmd(struct ctx *c)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct sandbox *v;
	size_t n;
	if (sb_list(&c->lake, &v, &n, &e) != MLK_OK)
		return fail(&e);
	time_t now = lake_now(&c->lake);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++)
		sb_json(&v[i], now, sb_has_files(&c->lake, &v[i]), &b);
	fwrite(b.data ? b.data : "", 1, b.len, stdout);
	buf_release(&b);
	int status = MLK_OK;
	sb_audit(c, "sandbox-list", NULL, NULL, "list", &status);
	sb_list_free(v, n);
	return finish_stdout(status);
}

/* extend and revoke: the named sandbox, and a grant for its dataset
 * (its maker may always revoke it). */
static int sb_change_cmd(struct ctx *c, int revoke)
{
	const struct opts *o = c->o;
	if (o->nargs != 2 || (!revoke && !o->expires) ||
	    (revoke && o->expires)) {
		mlk_warn(revoke ? "sandbox revoke takes a sandbox id"
				: "sandbox extend needs a sandbox id and "
				  "--expires");
		usage(MLK_USAGE);
	}
	long long secs = revoke ? 0 : want_duration(o->expires);
	struct mlk_error e = MLK_ERROR_INIT;
	struct sandbox sb;
	if (sb_load(&c->lake, o->args[1], &sb, &e) != MLK_OK)
		return fail(&e);
	const char *action = revoke ? "sandbox-revoke" : "sandbox-extend";
	struct decision d;
	memset(&d, 0, sizeof d);
	if (revoke && !strcmp(sb.by, c->id.user)) {
		d.allow = 1;
		snprintf(d.rule, sizeof d.rule, "sandbox-maker");
	} else {
		int rc = allowed(c, "sandbox", action, sb.zone, sb.dataset,
				 &d);
		if (rc) {
			sb_release(&sb);
			return rc;
		}
	}
	int lock = -1;
	time_t now = lake_now(&c->lake);
	enum mlk_status st = sb_lock(&c->lake, &lock, &e);
	if (st == MLK_OK)
		st = revoke ? sb_teardown(&c->lake, &sb, "revoked", now, &e)
			    : sb_extend(&c->lake, &sb, secs, now, &e);
	if (lock >= 0)
		fsio_unlock(lock);
	int status = st;
	if (st != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	sb_audit(c, action, &sb, &d, revoke ? "revoke" : "extend", &status);
	if (st == MLK_OK) {
		struct buf b = BUF_INIT;
		sb_json(&sb, now, sb_has_files(&c->lake, &sb), &b);
		fputs(b.data, stdout);
		buf_release(&b);
		status = finish_stdout(status);
	}
	sb_release(&sb);
	return status;
}

/* Tear down every expired or revoked sandbox, and directories without a
 * record; one line per sandbox torn down. */
static int sb_expire_cmd(struct ctx *c)
{
	struct mlk_error e = MLK_ERROR_INIT;
	int lock = -1;
	if (sb_lock(&c->lake, &lock, &e) != MLK_OK)
		return fail(&e);
	struct sandbox *v = NULL;
	size_t n = 0;
	char **orph = NULL;
	size_t no = 0;
	enum mlk_status st = sb_list(&c->lake, &v, &n, &e);
	if (st == MLK_OK)
		st = sb_orphans(&c->lake, &orph, &no, &e);
	time_t now = lake_now(&c->lake);
	int status = st;
	if (st != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	struct buf b = BUF_INIT;
	for (size_t i = 0; st == MLK_OK && i < n; i++) {
		struct sandbox *sb = &v[i];
		int active = !strcmp(sb->state, "active");
		if (active ? !sb_expired(sb, now) : !sb_has_files(&c->lake, sb))
			continue;
		struct mlk_error te = MLK_ERROR_INIT;
		int one = sb_teardown(&c->lake, sb, "expired", now, &te);
		if (one != MLK_OK) {
			mlk_error_print(mlk_progname, &te);
			status = one;
		}
		sb_audit(c, "sandbox-expire", sb, NULL, "expire", &one);
		buf_reset(&b);
		sb_json(sb, now, sb_has_files(&c->lake, sb), &b);
		fputs(b.data, stdout);
	}
	for (size_t i = 0; st == MLK_OK && i < no; i++) {
		struct mlk_error te = MLK_ERROR_INIT;
		int one = sb_remove_orphan(&c->lake, orph[i], &te);
		if (one != MLK_OK) {
			mlk_error_print(mlk_progname, &te);
			status = one;
		}
		buf_reset(&b);
		buf_addstr(&b, "{\"orphan\":");
		buf_add_json_cstr(&b, orph[i]);
		buf_addf(&b, ",\"removed\":%s}", one == MLK_OK ? "true"
							       : "false");
		audit(c, "sandbox-expire", NULL, NULL, NULL, NULL, NULL, b.data,
		      &one);
		buf_addch(&b, '\n');
		fputs(b.data, stdout);
	}
	buf_release(&b);
	fsio_unlock(lock);
	sb_list_free(v, n);
	for (size_t i = 0; i < no; i++)
		free(orph[i]);
	free(orph);
	return finish_stdout(status);
}

/* Prove that no expired, revoked or unrecorded sandbox left files. */
static int sb_verify_cmd(struct ctx *c)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct sandbox *v = NULL;
	size_t n = 0;
	char **orph = NULL;
	size_t no = 0;
	enum mlk_status st = sb_list(&c->lake, &v, &n, &e);
	if (st == MLK_OK)
		st = sb_orphans(&c->lake, &orph, &no, &e);
	if (st != MLK_OK) {
		sb_list_free(v, n);
		return fail(&e);
	}
	time_t now = lake_now(&c->lake);
	size_t bad = 0;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const struct sandbox *sb = &v[i];
		int files = sb_has_files(&c->lake, sb);
		int over = strcmp(sb->state, "active") || sb_expired(sb, now);
		int ok = !(over && files);
		if (!ok) {
			bad++;
			char *p = lake_path(&c->lake, "sandboxes/%s", sb->id);
			struct mlk_error be = MLK_ERROR_INIT;
			mlk_error_set(&be, MLK_INTEGRITY, p, 0, "%s sandbox "
				      "still has files", strcmp(sb->state,
				      "active") ? sb->state : "expired");
			mlk_error_print(mlk_progname, &be);
			free(p);
		}
		buf_reset(&b);
		buf_addf(&b, "{\"sandbox\":\"%s\",\"state\":", sb->id);
		buf_add_json_cstr(&b, sb->state);
		buf_addf(&b, ",\"expired\":%s,\"files\":%s,\"ok\":%s}\n",
			 sb_expired(sb, now) ? "true" : "false",
			 files ? "true" : "false", ok ? "true" : "false");
		fputs(b.data, stdout);
	}
	for (size_t i = 0; i < no; i++) {
		bad++;
		char *p = lake_path(&c->lake, "sandboxes/%s", orph[i]);
		struct mlk_error be = MLK_ERROR_INIT;
		mlk_error_set(&be, MLK_INTEGRITY, p, 0,
			      "files without a sandbox record");
		mlk_error_print(mlk_progname, &be);
		free(p);
		buf_reset(&b);
		buf_addstr(&b, "{\"orphan\":");
		buf_add_json_cstr(&b, orph[i]);
		buf_addstr(&b, ",\"ok\":false}\n");
		fputs(b.data, stdout);
	}
	int status = bad ? MLK_INTEGRITY : MLK_OK;
	buf_reset(&b);
	buf_addf(&b, "{\"verb\":\"verify\",\"sandboxes\":%zu,\"bad\":%zu}", n,
		 bad);
	audit(c, "sandbox-verify", NULL, NULL, NULL, NULL, NULL, b.data,
	      &status);
	buf_release(&b);
	sb_list_free(v, n);
	for (size_t i = 0; i < no; i++)
		free(orph[i]);
	free(orph);
	return finish_stdout(status);
}

static int cmd_sandbox(struct ctx *c)
{
	const struct opts *o = c->o;
	const char *verb = o->args[0];
	int takes_id = !strcmp(verb, "create") || !strcmp(verb, "extend") ||
		       !strcmp(verb, "revoke");
	int known = takes_id || !strcmp(verb, "list") ||
		    !strcmp(verb, "expire") || !strcmp(verb, "verify");
	if (!known) {
		mlk_warn("unknown sandbox command '%s'", verb);
		usage(MLK_USAGE);
	}
	if (!takes_id && (o->nargs != 1 || o->who || o->expires)) {
		mlk_warn("sandbox %s takes no argument and no --for or "
			 "--expires", verb);
		usage(MLK_USAGE);
	}
	if (strcmp(verb, "create") && o->who) {
		mlk_warn("--for is for sandbox create");
		usage(MLK_USAGE);
	}
	if (!strcmp(verb, "create"))
		return sb_create_cmd(c);
	if (!strcmp(verb, "list"))
		return sb_list_cmd(c);
	if (!strcmp(verb, "extend"))
		return sb_change_cmd(c, 0);
	if (!strcmp(verb, "revoke"))
		return sb_change_cmd(c, 1);
	if (!strcmp(verb, "expire"))
		return sb_expire_cmd(c);
	return sb_verify_cmd(c);
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
		{ "apply", no_argument, NULL, 'Y' },
		{ "reason", required_argument, NULL, 'R' },
		{ "for", required_argument, NULL, 'F' },
		{ "expires", required_argument, NULL, 'E' },
		{ "accept-failures", required_argument, NULL, 'X' },
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
		{ "create", "LnapqX", cmd_create, 1, 1 },
		{ "list", "L", cmd_list, 0, 1 },
		{ "show", "L", cmd_show, 1, 1 },
		{ "cat", "Lwp", cmd_cat, 1, 1 },
		{ "diff", "Ltp", cmd_diff, 2, 2 },
		{ "verify", "LA", cmd_verify, 0, 1 },
		{ "export", "Lfop", cmd_export, 1, 1 },
		{ "checkout", "Lp", cmd_checkout, 2, 2 },
		{ "compact", "LTpqn", cmd_compact, 1, 1 },
		{ "tier", "LYp", cmd_tier, 0, 0 },
		{ "gc", "LYp", cmd_gc, 0, 0 },
		{ "hold", "LRp", cmd_hold, 1, 1 },
		{ "release", "LRp", cmd_release, 1, 1 },
		{ "retention", "L", cmd_retention, 1, 1 },
		{ "sandbox", "LFEp", cmd_sandbox, 1, 2 },
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
		case 'Y': o.apply = 1; break;
		case 'R': o.reason = optarg; break;
		case 'F': o.who = optarg; break;
		case 'E': o.expires = optarg; break;
		case 'X': o.accept = optarg; break;
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
