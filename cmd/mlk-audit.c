/*
 * mlk-audit — verify the audit log, sign checkpoints of it, prove and
 * check inclusion and consistency, query events and trace lineage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "auditlog.h"
#include "buf.h"
#include "crypto.h"
#include "fsio.h"
#include "lake.h"
#include "lineage.h"
#include "merkle.h"
#include "metrics.h"
#include "openlineage.h"
#include "policy.h"
#include "record.h"
#include "status.h"
#include "treehead.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_text[] =
"usage: mlk-audit verify [--lake DIR] [--key FILE]\n"
"       mlk-audit checkpoint [--lake DIR]\n"
"       mlk-audit prove [--lake DIR] --inclusion SEQ | --consistency OLD_SIZE\n"
"                 [--size N]\n"
"       mlk-audit check-proof --key FILE --head FILE [--old-head FILE]\n"
"                 [--event FILE] PROOF\n"
"       mlk-audit query [--lake DIR] [--who USER] [--action A]\n"
"                 [--dataset D] [--since T] [--until T]\n"
"       mlk-audit trace [--lake DIR] [--format ndjson|dot] ID\n"
"       mlk-audit rotate [--lake DIR] [--min-size BYTES]\n"
"       mlk-audit export [--lake DIR] --openlineage\n"
"       mlk-audit metrics [--lake DIR] [--format json|table]\n"
"\n"
"Verify the lake's hash-chained audit log and its signed Merkle\n"
"checkpoints (RFC 6962), prove inclusion and consistency to an outside\n"
"auditor, query events, trace lineage from batches to sources, seal the\n"
"log into segments, export OpenLineage RunEvents, and report metrics.\n"
"\n"
"  --lake DIR            the lake (default: $MLK_LAKE, then the nearest\n"
"                        ancestor holding mlk.yaml)\n"
"  --key FILE            Ed25519 public key (PEM) to check signatures with\n"
"  --inclusion SEQ       prove that event SEQ is in the tree\n"
"  --consistency OLD_SIZE  prove the tree of OLD_SIZE events is a prefix\n"
"  --size N              tree size to prove against (default: the last\n"
"                        checkpoint)\n"
"  --head FILE           a saved tree head (a checkpoint line)\n"
"  --old-head FILE       the earlier tree head, for a consistency proof\n"
"  --event FILE          the event line, for an inclusion proof\n"
"  --who USER, --action A, --dataset D, --since T, --until T\n"
"                        query filters (times ISO 8601 UTC, or a date)\n"
"  --format FORMAT       trace output: ndjson (default) or dot; metrics\n"
"                        output: json or table (default: table on a\n"
"                        terminal)\n"
"  --min-size BYTES      rotate only a log of at least BYTES (default:\n"
"                        audit.rotate_bytes in mlk.yaml, else 0)\n"
"  --openlineage         export events as OpenLineage RunEvents\n"
"  --help, --version\n"
"\n"
"Exit status: 0 ok, 2 usage, 4 integrity failure (tampering, bad proof),\n"
"5 system error.  See mlk-audit(1) and mlk-audit(5).\n";

static void usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

struct opts {
	const char *lake, *key, *head, *old_head, *event, *format;
	const char *inclusion, *consistency, *size, *min_size;
	int openlineage;
	struct audit_query q;
	int nargs;
	char **args;
};

static int fail(const struct mlk_error *e)
{
	mlk_error_print(mlk_progname, e);
	return e->status;
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s || strspn(s, "0123456789") != strlen(s) ||
	    strlen(s) > 18)
		return -1;
	*out = strtoull(s, NULL, 10);
	return 0;
}

static int open_lake(const struct opts *o, struct lake *l,
		     struct auditlog *a, struct mlk_error *e)
{
	if (lake_open(o->lake, l, e) != MLK_OK)
		return e->status;
	if (auditlog_open(l, a, e) != MLK_OK) {
		lake_close(l);
		return e->status;
	}
	return 0;
}

static void out_buf(const struct buf *b)
{
	if (b->len)
		fwrite(b->data, 1, b->len, stdout);
}

/* 1 when the log holds anything signed: a checkpoint or a segment's
 * tree head. */
static int signed_any(const struct lake *l)
{
	char *cpf = lake_path(l, "audit/checkpoints.ndjson");
	char *seg = lake_path(l, "audit/segments");
	struct stat st;
	int any = stat(cpf, &st) == 0 && st.st_size > 0;
	char **names = NULL;
	size_t n = 0;
	struct mlk_error ie = MLK_ERROR_INIT;
	if (!any && fsio_exists(seg)) {
		if (fsio_list(seg, ".head.json", &names, &n, &ie) != MLK_OK)
			any = 1;        /* cannot tell: assume so */
		else
			any = n > 0;
		fsio_list_free(names, n);
	}
	free(cpf);
	free(seg);
	return any;
}

/*
 * The key that checkpoints must verify with: --key, else the lake's
 * private key when this user can read it (and then the public copy must
 * be its public half), else audit/checkpoint-key.pub.  0 with *have = 0
 * when the lake has no key yet.
 */
static int verify_key(const struct opts *o, const struct lake *l,
		      struct th_key *k, int *have, struct mlk_error *e)
{
	*have = 0;
	if (o->key) {
		if (th_key_load_pub(o->key, k, e) != MLK_OK)
			return e->status;
		*have = 1;
		return 0;
	}
	char *priv = lake_path(l, "keys/audit-ed25519.pem");
	char *pub = lake_path(l, "audit/checkpoint-key.pub");
	int rc = 0;
	if (fsio_exists(pub)) {
		if (th_key_load_pub(pub, k, e) != MLK_OK) {
			rc = e->status;
		} else {
			*have = 1;
			struct th_key lk;
			struct mlk_error ie = MLK_ERROR_INIT;
			if (fsio_exists(priv) && access(priv, R_OK) == 0 &&
			    th_key_lake(l, &lk, &ie) == MLK_OK) {
				if (strcmp(lk.id, k->id) != 0) {
					mlk_error_set(e, MLK_INTEGRITY, pub, 0,
						      "not the public half of "
						      "keys/audit-ed25519.pem");
					rc = MLK_INTEGRITY;
				}
				th_key_release(&lk);
			}
		}
	} else if (fsio_exists(priv) && signed_any(l)) {
		/* A rotation publishes the public key before it signs
		 * anything; one killed in between leaves the private key
		 * alone, with nothing signed, which is not tampering. */
		mlk_error_set(e, MLK_INTEGRITY, pub, 0,
			      "public checkpoint key is missing");
		rc = MLK_INTEGRITY;
	}
	free(priv);
	free(pub);
	return rc;
}

static int do_verify_common(const struct opts *o, struct lake *l,
			    struct auditlog *a, struct th_key *k,
			    int have_key, struct audit_verify *v,
			    struct tree_head **cp, size_t *ncp,
			    struct mlk_error *e)
{
	(void)o;
	if (auditlog_checkpoints(l, cp, ncp, e) != MLK_OK)
		return e->status;
	if (*ncp && !have_key)
		return mlk_error_set(e, MLK_INTEGRITY, NULL, 0,
				     "checkpoints but no public key to check "
				     "them with (give --key)");
	char *cpf = lake_path(l, "audit/checkpoints.ndjson");
	enum mlk_status s = auditlog_verify(a, *cp, *ncp,
					    have_key ? k : NULL, cpf, v, e);
	free(cpf);
	return s;
}

static int cmd_verify(const struct opts *o)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	struct auditlog a;
	if (open_lake(o, &l, &a, &e))
		return fail(&e);
	struct th_key k;
	int have = 0, rc = verify_key(o, &l, &k, &have, &e);
	struct tree_head *cp = NULL;
	size_t ncp = 0;
	struct audit_verify v;
	if (!rc)
		rc = do_verify_common(o, &l, &a, &k, have, &v, &cp, &ncp, &e);
	if (!rc) {
		char hex[SHA256_HEX];
		hex_encode(v.root, MERKLE_HASH, hex);
		printf("{\"verified\":true,\"events\":%llu,\"checkpoints\":%zu,"
		       "\"covered\":%llu,\"root_hash\":\"%s\","
		       "\"segments\":%zu}\n",
		       (unsigned long long)v.events, ncp,
		       (unsigned long long)v.covered, hex, v.segments);
		if (v.covered < v.events && mlk_isatty(2))
			mlk_warn("%llu events after the last checkpoint are "
				 "covered by the chain only",
				 (unsigned long long)(v.events - v.covered));
	} else {
		fail(&e);
	}
	free(cp);
	if (have)
		th_key_release(&k);
	auditlog_close(&a);
	lake_close(&l);
	return rc;
}

static int cmd_checkpoint(const struct opts *o)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	struct auditlog a;
	if (open_lake(o, &l, &a, &e))
		return fail(&e);
	struct th_key k, vk;
	int have = 0, rc = 0;
	struct tree_head *cp = NULL;
	size_t ncp = 0;
	struct audit_verify v;
	if (th_key_lake(&l, &k, &e) != MLK_OK) {
		rc = fail(&e);
		goto out0;
	}
	/* Never sign over a log that does not verify. */
	rc = verify_key(o, &l, &vk, &have, &e);
	if (!rc)
		rc = do_verify_common(o, &l, &a, &vk, have, &v, &cp, &ncp, &e);
	if (have)
		th_key_release(&vk);
	if (rc) {
		fail(&e);
		goto out;
	}
	struct tree_head h;
	memset(&h, 0, sizeof h);
	h.size = v.events;
	memcpy(h.root, v.root, MERKLE_HASH);
	lake_time_iso(lake_now(&l), h.time);
	if (th_sign(&k, &h, &e) != MLK_OK) {
		rc = fail(&e);
		goto out;
	}
	struct buf b = BUF_INIT;
	th_format(&h, &b);
	buf_addch(&b, '\n');
	if (auditlog_checkpoint_append(&l, &b, &e) == MLK_OK)
		out_buf(&b);
	else
		rc = fail(&e);
	buf_release(&b);
out:
	free(cp);
	th_key_release(&k);
out0:
	auditlog_close(&a);
	lake_close(&l);
	return rc;
}

static void add_path(struct buf *b, uint8_t (*h)[MERKLE_HASH], int n)
{
	char hex[SHA256_HEX];
	buf_addstr(b, "\"path\":[");
	for (int i = 0; i < n; i++) {
		hex_encode(h[i], MERKLE_HASH, hex);
		buf_addf(b, "%s\"%s\"", i ? "," : "", hex);
	}
	buf_addch(b, ']');
}

static int cmd_prove(const struct opts *o)
{
	uint64_t target, size = 0;
	int inclusion = o->inclusion != NULL;
	if ((o->inclusion != NULL) == (o->consistency != NULL)) {
		mlk_warn("prove needs one of --inclusion SEQ or "
			 "--consistency OLD_SIZE");
		usage(MLK_USAGE);
	}
	if (parse_u64(inclusion ? o->inclusion : o->consistency, &target) ||
	    target == 0 || (o->size && (parse_u64(o->size, &size) || !size))) {
		mlk_warn("sizes and seq numbers are whole numbers from 1");
		return MLK_USAGE;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	struct auditlog a;
	if (open_lake(o, &l, &a, &e))
		return fail(&e);
	struct tree_head *cp = NULL, *match = NULL;
	size_t ncp = 0;
	int rc = 0;
	if (auditlog_checkpoints(&l, &cp, &ncp, &e) != MLK_OK) {
		rc = fail(&e);
		goto out;
	}
	if (!o->size && !ncp) {
		mlk_warn("no checkpoint yet: run 'mlk-audit checkpoint' first, "
			 "or give --size");
		rc = MLK_USAGE;
		goto out;
	}
	if (!o->size)
		size = cp[ncp - 1].size;
	for (size_t i = 0; i < ncp; i++)
		if (cp[i].size == size)
			match = &cp[i];
	struct merkle_range r[MERKLE_MAX_PATH];
	int n = inclusion ? merkle_inclusion_ranges(target - 1, size, r)
			  : merkle_consistency_ranges(target, size, r);
	if (n < 0) {
		mlk_warn(inclusion ? "seq %llu is not in a tree of %llu events"
				   : "old size %llu is not between 1 and the "
				     "tree size %llu",
			 (unsigned long long)target, (unsigned long long)size);
		rc = MLK_USAGE;
		goto out;
	}
	uint8_t h[MERKLE_MAX_PATH][MERKLE_HASH], root[MERKLE_HASH];
	if (auditlog_subtrees(&a, size, r, (size_t)n, h, root, &e) != MLK_OK) {
		rc = fail(&e);
		goto out;
	}
	if (match && memcmp(match->root, root, MERKLE_HASH) != 0) {
		mlk_error_set(&e, MLK_INTEGRITY, a.path, 0,
			      "the first %llu events do not match their "
			      "checkpoint; run 'mlk-audit verify'",
			      (unsigned long long)size);
		rc = fail(&e);
		goto out;
	}
	char hex[SHA256_HEX];
	struct buf b = BUF_INIT;
	hex_encode(root, MERKLE_HASH, hex);
	if (inclusion) {
		const char *line;
		size_t len;
		uint8_t leaf[MERKLE_HASH];
		char lh[SHA256_HEX];
		auditlog_event(&a, target, &line, &len);
		merkle_leaf(line, len, leaf);
		hex_encode(leaf, MERKLE_HASH, lh);
		buf_addf(&b, "{\"type\":\"inclusion\",\"seq\":%llu,"
			 "\"leaf_index\":%llu,\"tree_size\":%llu,"
			 "\"root_hash\":\"%s\",\"leaf_hash\":\"%s\",",
			 (unsigned long long)target,
			 (unsigned long long)target - 1,
			 (unsigned long long)size, hex, lh);
	} else {
		uint8_t old[MERKLE_HASH], dummy[1][MERKLE_HASH];
		char oh[SHA256_HEX];
		if (auditlog_subtrees(&a, target, NULL, 0, dummy, old, &e) !=
		    MLK_OK) {
			buf_release(&b);
			rc = fail(&e);
			goto out;
		}
		hex_encode(old, MERKLE_HASH, oh);
		buf_addf(&b, "{\"type\":\"consistency\",\"old_size\":%llu,"
			 "\"tree_size\":%llu,\"old_root_hash\":\"%s\","
			 "\"root_hash\":\"%s\",",
			 (unsigned long long)target, (unsigned long long)size,
			 oh, hex);
	}
	add_path(&b, h, n);
	buf_addstr(&b, "}\n");
	out_buf(&b);
	buf_release(&b);
out:
	free(cp);
	auditlog_close(&a);
	lake_close(&l);
	return rc;
}

/* --- check-proof: no lake, only files -------------------------------- */

static int read_head(const char *path, const struct th_key *k,
		     struct tree_head *h, struct mlk_error *e)
{
	char *d;
	size_t n;
	if (fsio_read_file(path, &d, &n, e) != MLK_OK)
		return e->status;
	while (n && (d[n - 1] == '\n' || d[n - 1] == '\r'))
		n--;
	/* A saved checkpoints file: its last line is the head. */
	size_t off = n;
	while (off > 0 && d[off - 1] != '\n')
		off--;
	int rc = th_parse(d + off, n - off, h, path, 0, e);
	free(d);
	if (rc)
		return rc;
	if (!th_verify(k, h))
		return mlk_error_set(e, MLK_INTEGRITY, path, 0,
				     "tree head signature does not verify "
				     "with key %s", k->id);
	return 0;
}

static long long json_num(const struct rec *r, const char *key)
{
	int t = rec_get(r, 0, key);
	size_t n;
	if (t < 0 || rec_type(r, t) != REC_PRIMITIVE)
		return -1;
	const char *p = rec_raw(r, t, &n);
	return (p[0] >= '0' && p[0] <= '9') ? strtoll(p, NULL, 10) : -1;
}

static int cmd_check_proof(const struct opts *o)
{
	if (!o->key || !o->head || o->nargs != 1) {
		mlk_warn("check-proof needs --key, --head and one PROOF file");
		usage(MLK_USAGE);
	}
	const char *pf = o->args[0];
	struct mlk_error e = MLK_ERROR_INIT;
	struct th_key k;
	if (th_key_load_pub(o->key, &k, &e) != MLK_OK)
		return fail(&e);
	struct tree_head head, old;
	char *pd = NULL;
	size_t pn;
	struct rec r;
	rec_init(&r);
	int rc = read_head(o->head, &k, &head, &e);
	if (!rc && fsio_read_file(pf, &pd, &pn, &e) != MLK_OK)
		rc = e.status;
	while (!rc && pn && (pd[pn - 1] == '\n'))
		pn--;
	if (!rc && rec_parse(&r, pd, pn, &e) != MLK_OK)
		rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 1, "not a proof: %s",
				   e.msg);
	uint8_t path[MERKLE_MAX_PATH][MERKLE_HASH];
	size_t np = 0;
	int pt = rc ? -1 : rec_get(&r, 0, "path");
	int ty = rc ? -1 : rec_get(&r, 0, "type");
	if (!rc && (pt < 0 || rec_type(&r, pt) != REC_ARRAY || ty < 0))
		rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 1,
				   "not a proof: no type or path");
	for (int i = pt + 1; !rc && i < r.skip[pt]; i = r.skip[i]) {
		size_t n;
		const char *p = rec_raw(&r, i, &n);
		char hex[SHA256_HEX];
		if (np == MERKLE_MAX_PATH || n != 64 ||
		    rec_type(&r, i) != REC_STRING) {
			rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 1,
					   "not a proof: bad path element");
			break;
		}
		memcpy(hex, p, 64);
		hex[64] = '\0';
		if (hex_decode(hex, path[np++], MERKLE_HASH))
			rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 1,
					   "not a proof: bad path element");
	}
	long long size = rc ? -1 : json_num(&r, "tree_size");
	if (!rc && (size < 0 || (uint64_t)size != head.size))
		rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 1,
				   "proof is for a tree of %lld events, the "
				   "head is of %llu", size,
				   (unsigned long long)head.size);
	if (!rc && rec_str_eq(&r, ty, "inclusion")) {
		long long idx = json_num(&r, "leaf_index");
		char *ev = NULL;
		size_t en;
		uint8_t leaf[MERKLE_HASH];
		if (!o->event) {
			mlk_warn("an inclusion proof needs --event FILE");
			rc = MLK_USAGE;
		} else if (fsio_read_file(o->event, &ev, &en, &e) != MLK_OK) {
			rc = e.status;
		} else {
			if (en && ev[en - 1] == '\n')
				en--;
			merkle_leaf(ev, en, leaf);
			if (idx < 0 ||
			    !merkle_verify_inclusion((uint64_t)idx, head.size,
						     leaf,
						     (const uint8_t (*)[32])path,
						     np, head.root))
				rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 0,
						   "inclusion proof does not "
						   "verify: the event is not "
						   "at index %lld of the tree "
						   "the head signs", idx);
			else
				printf("inclusion proof verified: event %lld "
				       "of %llu, %s\n", idx + 1,
				       (unsigned long long)head.size,
				       head.key_id);
		}
		free(ev);
	} else if (!rc && rec_str_eq(&r, ty, "consistency")) {
		long long m = json_num(&r, "old_size");
		if (!o->old_head) {
			mlk_warn("a consistency proof needs --old-head FILE");
			rc = MLK_USAGE;
		} else if (!(rc = read_head(o->old_head, &k, &old, &e))) {
			if (m < 0 || (uint64_t)m != old.size ||
			    !merkle_verify_consistency(
				    old.size, head.size, old.root, head.root,
				    (const uint8_t (*)[32])path, np))
				rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 0,
						   "consistency proof does not "
						   "verify: the tree of %llu "
						   "events is not a prefix of "
						   "the tree of %llu",
						   (unsigned long long)old.size,
						   (unsigned long long)head.size);
			else
				printf("consistency proof verified: %llu "
				       "events extend to %llu, %s\n",
				       (unsigned long long)old.size,
				       (unsigned long long)head.size,
				       head.key_id);
		}
	} else if (!rc) {
		rc = mlk_error_set(&e, MLK_INTEGRITY, pf, 1,
				   "unknown proof type");
	}
	if (rc && rc != MLK_USAGE)
		fail(&e);
	rec_release(&r);
	free(pd);
	th_key_release(&k);
	return rc;
}

static int cmd_query(const struct opts *o)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	struct auditlog a;
	if (open_lake(o, &l, &a, &e))
		return fail(&e);
	size_t off = 0, len;
	const char *line;
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	while (auditlog_next(&a, &off, &line, &len))
		if (auditlog_match(line, len, &o->q)) {
			fwrite(line, 1, len, stdout);
			putchar('\n');
		}
	int rc = 0;
	if (fflush(stdout) != 0) {
		mlk_warn("cannot write to stdout: %s", strerror(errno));
		rc = MLK_SYSTEM;
	}
	auditlog_close(&a);
	lake_close(&l);
	return rc;
}

static int cmd_trace(const struct opts *o)
{
	int dot = 0;
	if (o->format && !strcmp(o->format, "dot"))
		dot = 1;
	else if (o->format && strcmp(o->format, "ndjson")) {
		mlk_warn("unknown format '%s' (want ndjson or dot)", o->format);
		usage(MLK_USAGE);
	}
	if (o->nargs != 1) {
		mlk_warn("trace needs one ID");
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	struct auditlog a;
	if (open_lake(o, &l, &a, &e))
		return fail(&e);
	struct lineage g;
	lineage_init(&g);
	int rc = 0;
	/* lineage searches every part: an edge may join events of two
	 * segments (a snapshot made after the log was rotated). */
	enum mlk_status ts = lineage_trace(&l, &a, o->args[0], &g, &e);
	if (ts != MLK_OK) {
		rc = fail(&e);
	} else {
		struct buf b = BUF_INIT;
		if (dot)
			lineage_dot(&g, &b);
		else
			lineage_ndjson(&g, &b);
		out_buf(&b);
		buf_release(&b);
	}
	lineage_release(&g);
	auditlog_close(&a);
	lake_close(&l);
	return rc;
}

static int cmd_export(const struct opts *o)
{
	if (!o->openlineage) {
		mlk_warn("export needs a format: --openlineage");
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	struct auditlog a;
	if (open_lake(o, &l, &a, &e))
		return fail(&e);
	struct buf ns = BUF_INIT, b = BUF_INIT;
	openlineage_namespace(&l, &ns);
	size_t off = 0, len;
	const char *line;
	int rc = 0;
	long long n = 0;
	while (auditlog_next(&a, &off, &line, &len)) {
		n++;
		if (openlineage_event(ns.data, line, len, &b) < 0) {
			mlk_warn("event %lld is not an audit event; run "
				 "'mlk-audit verify'", n);
			rc = MLK_INTEGRITY;
			break;
		}
		if (b.len >= 1 << 16) {
			out_buf(&b);
			buf_reset(&b);
		}
	}
	out_buf(&b);
	if (fflush(stdout) != 0) {
		mlk_warn("cannot write to stdout: %s", strerror(errno));
		rc = MLK_SYSTEM;
	}
	buf_release(&b);
	buf_release(&ns);
	auditlog_close(&a);
	lake_close(&l);
	return rc;
}

static void print_times(const char *what, long long n, long long of,
			const struct metric_times *t)
{
	if (of >= 0)
		printf("%-28s %lld of %lld", what, n, of);
	else
		printf("%-28s %lld", what, n);
	if (t->n)
		printf(", median %.0f s, max %.0f s", t->median, t->max);
	putchar('\n');
}

static void print_names(const struct metric_names *s)
{
	for (size_t i = 0; i < s->n && i < 10; i++)
		printf("%-28s   %s\n", "", s->v[i]);
	if (s->n > 10)
		printf("%-28s   ... and %zu more\n", "", s->n - 10);
}

/* The measures for a person: one line each, names below. */
static void metrics_table(const struct audit_metrics *m)
{
	printf("%-28s %lld\n", "events", m->events);
	printf("%-28s %lld of %lld", "datasets, complete lineage",
	       m->complete, m->datasets);
	if (m->datasets)
		printf(" (%.0f%%)", 100.0 * (double)m->complete /
					(double)m->datasets);
	putchar('\n');
	print_names(&m->incomplete);
	printf("%-28s %zu of %lld\n", "datasets, no owner/steward",
	       m->unowned.n, m->owned_examined);
	print_names(&m->unowned);
	print_times("access requests decided", m->decided, m->requests,
		    &m->access);
	printf("%-28s %lld (%lld denied)\n", "exports", m->exports,
	       m->exports_denied);
	printf("%-28s %zu of %lld\n", "sandboxes past expiry", m->overdue.n,
	       m->sandboxes);
	print_names(&m->overdue);
	print_times("snapshot rebuilds", m->rebuild.n, -1, &m->rebuild);
}

static int cmd_metrics(const struct opts *o)
{
	int table = mlk_isatty(1);
	if (o->format && !strcmp(o->format, "table"))
		table = 1;
	else if (o->format && !strcmp(o->format, "json"))
		table = 0;
	else if (o->format) {
		mlk_warn("unknown format '%s' (want json or table)", o->format);
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	struct auditlog a;
	if (open_lake(o, &l, &a, &e))
		return fail(&e);
	struct audit_metrics m;
	int rc = 0;
	if (audit_metrics(&l, &a, &m, &e) != MLK_OK) {
		rc = fail(&e);
	} else if (table) {
		metrics_table(&m);
	} else {
		struct buf b = BUF_INIT;
		audit_metrics_json(&m, &b);
		out_buf(&b);
		buf_release(&b);
	}
	audit_metrics_release(&m);
	auditlog_close(&a);
	lake_close(&l);
	return rc;
}

static int cmd_rotate(const struct opts *o)
{
	uint64_t min = 0;
	if (o->min_size && parse_u64(o->min_size, &min)) {
		mlk_warn("--min-size is a whole number of bytes");
		return MLK_USAGE;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct lake l;
	if (lake_open(o->lake, &l, &e) != MLK_OK)
		return fail(&e);
	if (!o->min_size) {
		long long c = lake_conf_num(&l, "audit", "rotate_bytes", 0);
		min = c > 0 ? (uint64_t)c : 0;
	}
	/* Sealing changes the lake: an admin action, asked and audited. */
	struct identity id;
	struct decision d;
	if (policy_identity(&l, &id, &e) != MLK_OK) {
		lake_close(&l);
		return fail(&e);
	}
	if (policy_check(&l, &id, "admin", NULL, NULL, &d, &e) != MLK_OK) {
		fail(&e);
		memset(&d, 0, sizeof d);
		snprintf(d.rule, sizeof d.rule, "policy-error");
	}
	struct audit_event ev = {
		"mlk-audit", "rotate", NULL, NULL, NULL, &d, NULL, NULL, NULL,
		d.allow ? MLK_OK : MLK_DENIED,
	};
	if (!d.allow) {
		mlk_warn("rotate denied for user '%s' by policy rule '%s'",
			 id.user, d.rule);
		int rc = MLK_DENIED;
		if (audit_append(&l, &id, &ev, &e) != MLK_OK)
			rc = fail(&e);
		identity_release(&id);
		lake_close(&l);
		return rc;
	}
	struct th_key k, vk;
	int have = 0, rc = 0;
	if (th_key_lake(&l, &k, &e) != MLK_OK) {
		rc = fail(&e);
		identity_release(&id);
		lake_close(&l);
		return rc;
	}
	rc = verify_key(o, &l, &vk, &have, &e);
	unsigned seg = 0;
	struct tree_head h;
	if (!rc && auditlog_rotate(&l, &id, &ev, &k, have ? &vk : NULL,
				   (size_t)min, &seg, &h, &e) != MLK_OK)
		rc = e.status;
	if (rc) {
		fail(&e);
	} else if (seg) {
		char hex[SHA256_HEX];
		hex_encode(h.root, MERKLE_HASH, hex);
		printf("{\"rotated\":true,\"segment\":\"audit/segments/%06u."
		       "ndjson\",\"tree_size\":%llu,\"root_hash\":\"%s\"}\n",
		       seg, (unsigned long long)h.size, hex);
	} else {
		printf("{\"rotated\":false}\n");
	}
	if (have)
		th_key_release(&vk);
	th_key_release(&k);
	identity_release(&id);
	lake_close(&l);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lake", required_argument, NULL, 'L' },
		{ "key", required_argument, NULL, 'k' },
		{ "inclusion", required_argument, NULL, 'i' },
		{ "consistency", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'n' },
		{ "head", required_argument, NULL, 'H' },
		{ "old-head", required_argument, NULL, 'O' },
		{ "event", required_argument, NULL, 'E' },
		{ "who", required_argument, NULL, 'w' },
		{ "action", required_argument, NULL, 'a' },
		{ "dataset", required_argument, NULL, 'd' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "format", required_argument, NULL, 'f' },
		{ "min-size", required_argument, NULL, 'm' },
		{ "openlineage", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* Which options each subcommand takes. */
	static const struct {
		const char *name, *opts;
		int (*run)(const struct opts *);
		int maxargs;
	} cmds[] = {
		{ "verify", "Lk", cmd_verify, 0 },
		{ "checkpoint", "L", cmd_checkpoint, 0 },
		{ "prove", "Licn", cmd_prove, 0 },
		{ "check-proof", "kHOE", cmd_check_proof, 1 },
		{ "query", "Lwadsu", cmd_query, 0 },
		{ "trace", "Lf", cmd_trace, 1 },
		{ "rotate", "Lm", cmd_rotate, 0 },
		{ "export", "Lo", cmd_export, 0 },
		{ "metrics", "Lf", cmd_metrics, 0 },
	};
	mlk_progname = "mlk-audit";
	if (argc < 2)
		usage(MLK_USAGE);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		usage(0);
	if (!strcmp(argv[1], "--version")) {
		puts("mlk-audit " MLK_VERSION);
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
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'h')
			usage(0);
		if (c == 'V') {
			puts("mlk-audit " MLK_VERSION);
			return 0;
		}
		if (c == ':') {
			mlk_warn("option '%s' needs a value", argv[optind - 1]);
			usage(MLK_USAGE);
		}
		if (c == '?' || !strchr(cmds[ci].opts, c)) {
			mlk_warn("%s option '%s' for %s", c == '?' ? "unknown"
				 : "no", argv[optind - 1], cmds[ci].name);
			usage(MLK_USAGE);
		}
		switch (c) {
		case 'L': o.lake = optarg; break;
		case 'k': o.key = optarg; break;
		case 'i': o.inclusion = optarg; break;
		case 'c': o.consistency = optarg; break;
		case 'n': o.size = optarg; break;
		case 'H': o.head = optarg; break;
		case 'O': o.old_head = optarg; break;
		case 'E': o.event = optarg; break;
		case 'w': o.q.who = optarg; break;
		case 'a': o.q.action = optarg; break;
		case 'd': o.q.dataset = optarg; break;
		case 's': o.q.since = optarg; break;
		case 'u': o.q.until = optarg; break;
		case 'f': o.format = optarg; break;
		case 'm': o.min_size = optarg; break;
		case 'o': o.openlineage = 1; break;
		}
	}
	o.nargs = argc - optind;
	o.args = argv + optind;
	if (o.nargs > cmds[ci].maxargs) {
		mlk_warn("unexpected argument '%s'", o.args[cmds[ci].maxargs]);
		usage(MLK_USAGE);
	}
	return cmds[ci].run(&o);
}
