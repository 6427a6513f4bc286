/*
 * mlk-deid — de-identify records under a profile; re-identify tokens
 * (rehydrate) from the encrypted identity vault when policy allows.
 *
 * The engine is common/deid.c (profiles in common/profile.c, the vault in
 * common/vault.c, k-anonymity in common/kanon.c); this file parses
 * options, finds the key, reports and audits.
 */
/* strptime(3) is XSI. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "crypto.h"
#include "deid.h"
#include "fsio.h"
#include "kanon.h"
#include "lake.h"
#include "objdeid.h"
#include "policy.h"
#include "profile.h"
#include "record.h"
#include "samplemap.h"
#include "status.h"
#include "vault.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_text[] =
"usage: mlk-deid [--profile NAME|FILE] [--project NAME] [--seed S]\n"
"                [--lake DIR] [--key-file FILE] [--k N --quasi FIELD,...]\n"
"                [--suppress] [--k-report FILE] [--sample-map FILE]\n"
"                [--purpose TEXT] [FILE|-]\n"
"       mlk-deid rehydrate --project NAME --approval REF --expires TIME\n"
"                [--lake DIR] [--purpose TEXT] [TOKEN ...]\n"
"       mlk-deid --list-profiles\n"
"       mlk-deid --show-profile NAME|FILE [--lake DIR]\n"
"\n"
"De-identify records (stdin by default) under a profile: safe-harbor\n"
"(the default), limited-dataset, research-pseudonymized, or your own.\n"
"\n"
"  --profile P        a built-in profile, a profile in the lake's\n"
"                     profiles/, or a YAML file (see mlk-profile(5))\n"
"  --project NAME     scope of tokens and date shifts (default: default)\n"
"  --seed S           seed of perturb noise (default 0)\n"
"  --lake DIR         the lake whose key is used and audit log written\n"
"  --key-file FILE    the key (mode 0600), when no lake is found\n"
"  --k N              report classes of fewer than N records over --quasi\n"
"  --quasi FIELDS     the quasi-identifiers (dotted paths of the output)\n"
"  --suppress         leave out the records of those classes\n"
"  --k-report FILE    write the k-anonymity report there (else stderr)\n"
"  --sample-map FILE  CSV/TSV of sample and patient columns: the patient\n"
"                     of each VCF/SAM sample (else the sample name)\n"
"  --purpose TEXT     why, for the audit log\n"
"  rehydrate          print the original values of tokens (stdin or\n"
"                     arguments) from the vault; needs a policy grant\n"
"  --approval REF     the approval this re-identification rests on\n"
"  --expires TIME     when the approval ends (ISO 8601)\n"
"  --help, --version\n"
"\n"
"Exit status: 0 ok, 1 some records rejected, 2 usage, 3 denied,\n"
"4 integrity failure, 5 system error.  See mlk-deid(1).\n";

static void usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static unsigned long long parse_count(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s < '0' || *s > '9' || *end || errno) {
		mlk_warn("%s wants a whole number", opt);
		usage(MLK_USAGE);
	}
	return v;
}

static char **split_list(const char *opt, const char *s, size_t *n)
{
	char **v = NULL;
	*n = 0;
	for (;;) {
		const char *c = strchr(s, ',');
		size_t len = c ? (size_t)(c - s) : strlen(s);
		if (!len) {
			mlk_warn("%s: empty field name", opt);
			usage(MLK_USAGE);
		}
		v = xrealloc(v, (*n + 1) * sizeof *v);
		v[(*n)++] = xstrndup(s, len);
		if (!c)
			break;
		s = c + 1;
	}
	return v;
}

/* ------------------------------------------------------------------ */

/* Threads de-identifying objects (deid.threads, at most this many). */
#define OBJ_THREADS_MAX 16
/* Records are held back until hold_objects new objects wait to be
 * published (at most HOLD_OBJECTS, fewer when few files may be open: each
 * holds one), or HOLD_BYTES of records are held (see drain()). */
#define HOLD_OBJECTS 1024
#define HOLD_BYTES (16u << 20)

struct objline {
	const char *p;          /* the record, without its newline */
	size_t len;
	struct buf out;         /* what it became */
	struct mlk_error e;
	enum mlk_status st;
};

struct run {
	const char *input;
	int ok;
	FILE *spool;               /* --suppress: output held back */
	struct kanon *ka;
	struct vault_writer *vw;
	struct mlk_error ve;
	int vault_failed;
	unsigned long long out_records;
	/* objects behind records (objdeid.h), one instance per thread */
	struct objdeid *od[OBJ_THREADS_MAX];
	int nod;
	struct buf held;           /* records naming unpublished objects */
	size_t hold_objects;
	unsigned long long obj_rejected;
	/* a chunk's lines and what became of each (objects()) */
	struct objline *lines;
	size_t lines_alloc;
};

static int write_out(struct run *o, const char *p, size_t n)
{
	if (fwrite(p, 1, n, o->spool ? o->spool : stdout) != n) {
		if (errno != EPIPE)
			mlk_warn("cannot write records: %s", strerror(errno));
		o->ok = 0;
		return 1;
	}
	return 0;
}

struct objwork {
	struct run *o;
	struct objdeid *od;
	size_t n;
	atomic_size_t *next;
};

static void *obj_worker(void *arg)
{
	struct objwork *w = arg;
	size_t i;
	while ((i = atomic_fetch_add(w->next, 1)) < w->n) {
		struct objline *l = &w->o->lines[i];
		buf_reset(&l->out);
		l->e = (struct mlk_error)MLK_ERROR_INIT;
		l->st = objdeid_record(w->od, l->p, l->len, &l->out, &l->e);
	}
	return NULL;
}

/*
 * Records naming an object (_mlk.blob) get a de-identified object: the
 * lines of a chunk are shared out among the threads (one objdeid each),
 * then written, and their messages printed, in input order.
 */
static void objects(struct run *o, const char *p, size_t n)
{
	size_t nl = 0;
	const char *s = p, *end = p + n;
	while (s < end) {
		const char *q = memchr(s, '\n', (size_t)(end - s));
		size_t len = q ? (size_t)(q - s) : (size_t)(end - s);
		if (nl == o->lines_alloc) {
			size_t na = o->lines_alloc ? 2 * o->lines_alloc : 64;
			o->lines = xrealloc(o->lines, na * sizeof *o->lines);
			memset(o->lines + o->lines_alloc, 0,
			       (na - o->lines_alloc) * sizeof *o->lines);
			o->lines_alloc = na;
		}
		o->lines[nl].p = s;
		o->lines[nl].len = len;
		nl++;
		s += len + 1;
	}
	atomic_size_t next = 0;
	struct objwork w[OBJ_THREADS_MAX];
	pthread_t tid[OBJ_THREADS_MAX];
	int started = 0;
	for (int t = 0; t < o->nod; t++) {
		w[t] = (struct objwork){ o, o->od[t], nl, &next };
		/* the calling thread works too; helpers only for big chunks */
		if (t > 0 && nl > 1 &&
		    pthread_create(&tid[t], NULL, obj_worker, &w[t]) == 0)
			started = t;
	}
	obj_worker(&w[0]);
	for (int t = 1; t <= started; t++)
		pthread_join(tid[t], NULL);
	for (size_t i = 0; i < nl; i++) {
		struct objline *l = &o->lines[i];
		if (l->st != MLK_OK) {
			mlk_error_print(mlk_progname, &l->e);
			if (l->st == MLK_PARTIAL)
				o->obj_rejected++;
			else
				o->ok = 0;
		}
		buf_add(&o->held, l->out.data ? l->out.data : "", l->out.len);
	}
	/* the disk syncs this chunk's objects while the next one is made */
	for (int t = 0; t < o->nod; t++)
		objdeid_sync_start(o->od[t]);
}

static int emit(struct run *o, const char *p, size_t n);

/*
 * Publish the objects waiting (one object_publish_many() for all
 * threads), then write the records held back, which name them.  Records
 * are held until HOLD_OBJECTS objects wait or HOLD_BYTES of records are
 * held, so that each directory of the store is synced once per batch
 * rather than once per chunk of input.
 */
static int drain(struct run *o)
{
	struct mlk_error fe = MLK_ERROR_INIT;
	if (objdeid_flush_many(o->od, (size_t)o->nod, &fe) != MLK_OK) {
		mlk_error_print(mlk_progname, &fe);
		o->ok = 0;
		buf_reset(&o->held);
		return 1;
	}
	int rc = emit(o, o->held.data ? o->held.data : "", o->held.len);
	buf_reset(&o->held);
	return rc;
}

static int sink_write(void *ctx, const char *p, size_t n)
{
	struct run *o = ctx;
	if (!o->nod)
		return emit(o, p, n);
	objects(o, p, n);
	size_t waiting = 0;
	for (int t = 0; t < o->nod; t++)
		waiting += objdeid_pending(o->od[t]);
	if (waiting >= o->hold_objects || o->held.len >= HOLD_BYTES)
		return drain(o);
	return 0;
}

/* Records out: k-anonymity counts, then standard output (or the spool). */
static int emit(struct run *o, const char *p, size_t n)
{
	if (o->ka) {
		const char *s = p, *end = p + n;
		while (s < end) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
			kanon_add(o->ka, s, len);
			s += len + 1;
		}
	}
	for (const char *s = p; (s = memchr(s, '\n', (size_t)(p + n - s)));
	     s++)
		o->out_records++;
	return write_out(o, p, n);
}

static void sink_reject(void *ctx, long long line, const char *reason)
{
	struct run *o = ctx;
	struct mlk_error e = MLK_ERROR_INIT;
	mlk_error_set(&e, MLK_PARTIAL, o->input, line, "%s; left out",
		      reason);
	mlk_error_print(mlk_progname, &e);
}

static int sink_vault(void *ctx, const char *token, const char *value,
		      size_t n)
{
	struct run *o = ctx;
	if (vault_put(o->vw, token, value, n, &o->ve) != MLK_OK) {
		o->vault_failed = 1;
		return 1;
	}
	return 0;
}

static void print_dropped(void *ctx, const char *path, unsigned long long n)
{
	struct buf *b = ctx;
	mlk_warn("dropped field '%s' in %llu record%s: no rule of the "
		 "profile names it", path, n, n == 1 ? "" : "s");
	if (b->len)
		buf_addch(b, ',');
	buf_add_json_cstr(b, path);
}

static enum mlk_status write_report(const char *path, const struct buf *b,
				    struct mlk_error *e)
{
	return fsio_write_atomic(path, b->data, b->len, 0644, e);
}

/* Second pass of --suppress: the held-back records of large classes. */
static unsigned long long release_spool(struct run *o, unsigned long long k)
{
	unsigned long long suppressed = 0;
	FILE *f = o->spool;
	o->spool = NULL;
	rewind(f);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		size_t n = (size_t)len;
		if (kanon_class(o->ka, line, n - 1) < k) {
			suppressed++;
			continue;
		}
		if (write_out(o, line, n))
			break;
	}
	free(line);
	fclose(f);
	return suppressed;
}

static int copy_fd(int from, int to)
{
	static char b[1 << 16];
	for (;;) {
		ssize_t n = read(from, b, sizeof b);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, b + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			off += w;
		}
	}
}

struct keyed {
	struct lake lake;
	int have_lake;
	uint8_t key[MLK_KEY_LEN];
	char key_id[32];
};

/* The key: --key-file, else the lake's default key. */
static void keyed_release(struct keyed *k);

/* The key (--key-file, else the lake's); on failure it says why, releases
 * what it got and returns the exit status. */
static int load_key(const char *lakedir, const char *keyfile, struct keyed *k)
{
	struct mlk_error e = MLK_ERROR_INIT;
	memset(k, 0, sizeof *k);
	if (lake_key_load(lakedir, keyfile, &k->lake, &k->have_lake, k->key,
			  &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		keyed_release(k);
		return e.status;
	}
	crypto_key_id(k->key, k->key_id, sizeof k->key_id);
	return MLK_OK;
}

static void keyed_release(struct keyed *k)
{
	crypto_wipe(k->key, sizeof k->key);
	if (k->have_lake)
		lake_close(&k->lake);
}

static void audit_run(struct keyed *k, const char *action,
		      const char *purpose, const char *inputs,
		      const char *outputs, const char *detail,
		      const struct decision *dec, int status)
{
	if (!k->have_lake)
		return;
	struct identity id;
	struct mlk_error ae = MLK_ERROR_INIT;
	if (policy_identity(&k->lake, &id, &ae) == MLK_OK) {
		struct audit_event ev = {
			.tool = "mlk-deid", .action = action,
			.purpose = purpose, .decision = dec,
			.inputs = inputs, .outputs = outputs,
			.detail = detail, .status = status,
		};
		if (audit_append(&k->lake, &id, &ev, &ae) != MLK_OK)
			mlk_error_print(mlk_progname, &ae);
		identity_release(&id);
	} else {
		mlk_error_print(mlk_progname, &ae);
	}
}

/* ------------------------------------------------------------------ */
/* rehydrate                                                           */

static int parse_time(const char *s, time_t *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof tm);
		end = strptime(s, "%Y-%m-%d", &tm);
		if (!end || *end)
			return -1;
		tm.tm_hour = 23;
		tm.tm_min = 59;
		tm.tm_sec = 59;
	}
	*t = timegm(&tm);
	return 0;
}

static int token_ok(const char *t)
{
	if (strlen(t) != DEID_TOKEN_LEN)
		return 0;
	for (int i = 0; i < DEID_TOKEN_LEN; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? t[i] != '-' : !strchr("0123456789abcdef", t[i]))
			return 0;
	}
	return 1;
}

static int rehydrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "project", required_argument, NULL, 'P' },
		{ "approval", required_argument, NULL, 'a' },
		{ "expires", required_argument, NULL, 'x' },
		{ "lake", required_argument, NULL, 'L' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *project = NULL, *approval = NULL, *expires = NULL;
	const char *lakedir = NULL, *purpose = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'P': project = optarg; break;
		case 'a': approval = optarg; break;
		case 'x': expires = optarg; break;
		case 'L': lakedir = optarg; break;
		case 'p': purpose = optarg; break;
		case 'h': usage(0); break;
		case ':':
			mlk_warn("option '%s' needs a value", argv[optind - 1]);
			usage(MLK_USAGE);
			break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (!project || !approval || !expires) {
		mlk_warn("rehydrate needs --project, --approval and --expires");
		usage(MLK_USAGE);
	}
	if (!*approval || strlen(approval) > 200) {
		mlk_warn("--approval wants a reference of 1 to 200 characters");
		usage(MLK_USAGE);
	}
	time_t exp;
	if (parse_time(expires, &exp) != 0) {
		mlk_warn("--expires wants a time like 2026-12-31 or "
			 "2026-12-31T17:00:00Z");
		usage(MLK_USAGE);
	}
	struct keyed k;
	int st = load_key(lakedir, NULL, &k);
	if (st != MLK_OK)
		return st;
	struct identity id;
	struct mlk_error e = MLK_ERROR_INIT;
	struct decision dec;
	if (policy_identity(&k.lake, &id, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		keyed_release(&k);
		return e.status;
	}
	policy_check(&k.lake, &id, "rehydrate", NULL, NULL, &dec, &e);
	identity_release(&id);
	struct buf det = BUF_INIT;
	buf_addstr(&det, "{\"project\":");
	buf_add_json_cstr(&det, project);
	buf_addstr(&det, ",\"approval\":");
	buf_add_json_cstr(&det, approval);
	buf_addstr(&det, ",\"expires\":");
	buf_add_json_cstr(&det, expires);
	time_t now = lake_now(&k.lake);
	if (!dec.allow || now > exp) {
		if (!dec.allow)
			mlk_warn("rehydrate denied by policy (rule %s): it "
				 "needs a grant of action rehydrate", dec.rule);
		else
			mlk_warn("the approval expired at %s", expires);
		buf_addf(&det, ",\"reason\":\"%s\"}", !dec.allow ? "policy"
			 : "expired");
		if (dec.allow) {
			dec.allow = 0;
			snprintf(dec.rule, sizeof dec.rule, "expired");
		}
		audit_run(&k, "rehydrate", purpose, "[]", "[]", det.data, &dec,
			  MLK_DENIED);
		buf_release(&det);
		keyed_release(&k);
		return MLK_DENIED;
	}
	uint8_t vkey[MLK_KEY_LEN];
	deid_vault_key(k.key, project, vkey);
	crypto_wipe(k.key, sizeof k.key);

	/* Tokens from the arguments, else one per line on stdin. */
	char **toks = NULL;
	size_t nt = 0;
	for (int i = optind; i < argc; i++) {
		toks = xrealloc(toks, (nt + 1) * sizeof *toks);
		toks[nt++] = xstrdup(argv[i]);
	}
	if (optind == argc) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		while ((len = getline(&line, &cap, stdin)) > 0) {
			while (len && (line[len - 1] == '\n' ||
				       line[len - 1] == '\r'))
				line[--len] = '\0';
			if (!len)
				continue;
			toks = xrealloc(toks, (nt + 1) * sizeof *toks);
			toks[nt++] = xstrdup(line);
		}
		free(line);
	}
	int status = MLK_OK;
	unsigned long long found_n = 0, missing = 0;
	struct buf val = BUF_INIT, outl = BUF_INIT, hashes = BUF_INIT;
	for (size_t i = 0; i < nt; i++) {
		if (!token_ok(toks[i])) {
			mlk_warn("argument %zu is not a token", i + 1);
			status = MLK_PARTIAL;
			continue;
		}
		int found = 0;
		buf_reset(&val);
		enum mlk_status ls = vault_lookup(&k.lake, project, vkey,
						  toks[i], &val, &found, &e);
		if (ls != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			status = ls;
			break;
		}
		buf_reset(&outl);
		buf_addf(&outl, "{\"token\":\"%s\",\"found\":%s", toks[i],
			 found ? "true" : "false");
		if (found) {
			buf_addstr(&outl, ",\"value\":");
			buf_add_json_str(&outl, val.data ? val.data : "",
					 val.len);
			found_n++;
		} else {
			missing++;
		}
		buf_add(&outl, "}\n", 2);
		fwrite(outl.data, 1, outl.len, stdout);
		if (hashes.len)
			buf_addch(&hashes, ',');
		buf_addf(&hashes, "\"%s\"", toks[i]);
		if (val.data)
			crypto_wipe(val.data, val.len);
	}
	crypto_wipe(vkey, sizeof vkey);
	if (fflush(stdout) != 0)
		status = MLK_SYSTEM;
	if (missing && status == MLK_OK)
		status = MLK_PARTIAL;
	buf_addf(&det, ",\"found\":%llu,\"missing\":%llu}", found_n, missing);
	struct buf in = BUF_INIT;
	buf_addch(&in, '[');
	buf_add(&in, hashes.data ? hashes.data : "", hashes.len);
	buf_addch(&in, ']');
	/* Every lookup is audited: the tokens asked for, never values. */
	audit_run(&k, "rehydrate", purpose, in.data, "[]", det.data, &dec,
		  status);
	for (size_t i = 0; i < nt; i++)
		free(toks[i]);
	free(toks);
	buf_release(&val);
	buf_release(&outl);
	buf_release(&hashes);
	buf_release(&in);
	buf_release(&det);
	keyed_release(&k);
	return status;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'P' },
		{ "project", required_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, 'z' },
		{ "lake", required_argument, NULL, 'L' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "k", required_argument, NULL, 'K' },
		{ "quasi", required_argument, NULL, 'q' },
		{ "suppress", no_argument, NULL, 's' },
		{ "k-report", required_argument, NULL, 'r' },
		{ "sample-map", required_argument, NULL, 'M' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "list-profiles", no_argument, NULL, 'l' },
		{ "show-profile", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	mlk_progname = "mlk-deid";
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !strcmp(argv[1], "rehydrate"))
		return rehydrate(argc - 1, argv + 1);

	const char *profname = "safe-harbor", *project = "default";
	const char *lakedir = NULL, *keyfile = NULL, *kreport = NULL;
	const char *purpose = NULL, *show = NULL, *samplemap = NULL;
	unsigned long long seed = 0, kval = 0;
	char **quasi = NULL;
	size_t nquasi = 0;
	int suppress = 0, list = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'P': profname = optarg; break;
		case 'j': project = optarg; break;
		case 'z': seed = parse_count("--seed", optarg); break;
		case 'L': lakedir = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'K': kval = parse_count("--k", optarg); break;
		case 'q':
			for (size_t i = 0; i < nquasi; i++)
				free(quasi[i]);
			free(quasi);
			quasi = split_list("--quasi", optarg, &nquasi);
			break;
		case 's': suppress = 1; break;
		case 'r': kreport = optarg; break;
		case 'M': samplemap = optarg; break;
		case 'p': purpose = optarg; break;
		case 'l': list = 1; break;
		case 'S': show = optarg; break;
		case 'h': usage(0); break;
		case 'V': puts("mlk-deid " MLK_VERSION); return 0;
		case ':':
			mlk_warn("option '%s' needs a value", argv[optind - 1]);
			usage(MLK_USAGE);
			break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	struct mlk_error e = MLK_ERROR_INIT;
	if (list) {
		for (const char *const *n = profile_builtin_names(); *n; n++)
			puts(*n);
		return 0;
	}
	if (show) {
		struct lake l;
		int hl = lake_open(lakedir, &l, &e) == MLK_OK;
		mlk_error_clear(&e);
		struct buf b = BUF_INIT;
		enum mlk_status st = profile_text(show, hl ? &l : NULL, &b, &e);
		if (st == MLK_OK)
			fwrite(b.data, 1, b.len, stdout);
		else
			mlk_error_print(mlk_progname, &e);
		buf_release(&b);
		if (hl)
			lake_close(&l);
		return st;
	}
	if (argc - optind > 1) {
		mlk_warn("one input at most (a file, or - for stdin)");
		usage(MLK_USAGE);
	}
	if (!!kval != !!nquasi) {
		mlk_warn("--k and --quasi go together");
		usage(MLK_USAGE);
	}
	if ((suppress || kreport) && !kval) {
		mlk_warn("--suppress and --k-report need --k and --quasi");
		usage(MLK_USAGE);
	}
	if (!vault_project_valid(project)) {
		mlk_warn("--project wants a name of letters, digits, '.', '_' "
			 "and '-'");
		usage(MLK_USAGE);
	}
	const char *input = optind < argc ? argv[optind] : "-";

	/* the sample map first: a bad one costs nothing else */
	struct samplemap *sm = NULL;
	if (samplemap && samplemap_load(samplemap, &sm, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct keyed k;
	int st = load_key(lakedir, keyfile, &k);
	if (st != MLK_OK) {
		samplemap_free(sm);
		return st;
	}
	if (sm && !k.have_lake) {
		mlk_warn("--sample-map needs a lake: objects are "
			 "de-identified in its store");
		samplemap_free(sm);
		keyed_release(&k);
		return MLK_USAGE;
	}
	struct profile prof;
	if (profile_load(profname, k.have_lake ? &k.lake : NULL, &prof, &e)
	    != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		samplemap_free(sm);
		keyed_release(&k);
		return e.status;
	}
	int has_encrypt = 0;
	for (size_t i = 0; i < prof.nrules; i++)
		has_encrypt |= prof.rules[i].method == DM_ENCRYPT;
	struct run o;
	memset(&o, 0, sizeof o);
	o.input = input;
	o.ok = 1;
	o.ve = (struct mlk_error)MLK_ERROR_INIT;
	if (has_encrypt) {
		if (!k.have_lake) {
			mlk_warn("profile '%s' encrypts: that needs a lake "
				 "(its vault)", prof.name);
			samplemap_free(sm);
			profile_release(&prof);
			keyed_release(&k);
			return MLK_USAGE;
		}
		uint8_t vkey[MLK_KEY_LEN];
		deid_vault_key(k.key, project, vkey);
		enum mlk_status vs = vault_open(&k.lake, project, vkey, &o.vw,
						&e);
		crypto_wipe(vkey, sizeof vkey);
		if (vs != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			samplemap_free(sm);
			profile_release(&prof);
			keyed_release(&k);
			return vs;
		}
	}
	time_t now = k.have_lake ? lake_now(&k.lake) : time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	struct deid_params dp = {
		.prof = &prof, .project = project, .seed = seed,
		.ref_year = tm.tm_year + 1900, .key_id = k.key_id,
		.vault = has_encrypt,
		/* with a lake, objdeid rebuilds the records of objects */
		.objects_rebuilt = k.have_lake,
	};
	struct deid *d = deid_new(&dp, k.key, &e);
	crypto_wipe(k.key, sizeof k.key);
	if (!d) {
		mlk_error_print(mlk_progname, &e);
		vault_abort(o.vw);
		samplemap_free(sm);
		profile_release(&prof);
		keyed_release(&k);
		return e.status;
	}
	int threads = k.have_lake ? (int)lake_conf_num(&k.lake, "deid",
						       "threads", 2) : 2;
	int nobj = threads < 1 ? 1 : threads > OBJ_THREADS_MAX
		   ? OBJ_THREADS_MAX : threads;
	for (int t = 0; k.have_lake && t < nobj; t++) {
		if ((o.od[t] = objdeid_new(&k.lake, d, &prof, project, &e)))
			o.nod++;
		else
			break;
	}
	if (k.have_lake && o.nod < nobj) {
		mlk_error_print(mlk_progname, &e);
		samplemap_free(sm);
		deid_free(d);
		vault_abort(o.vw);
		profile_release(&prof);
		keyed_release(&k);
		return e.status;
	}
	if (o.nod) {
		/* each object waiting to be published holds a file open
		 * (HOLD_OBJECTS, and PENDING_MAX per thread): room for them */
		struct rlimit rl;
		o.hold_objects = 64;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			if (rl.rlim_cur < 8192 && rl.rlim_cur < rl.rlim_max) {
				rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max
								 : 8192;
				setrlimit(RLIMIT_NOFILE, &rl);
				getrlimit(RLIMIT_NOFILE, &rl);
			}
			/* half the files left, for the objects waiting */
			if (rl.rlim_cur > 256)
				o.hold_objects = (rl.rlim_cur - 128) / 2;
			if (o.hold_objects > HOLD_OBJECTS)
				o.hold_objects = HOLD_OBJECTS;
		}
	}
	for (int t = 0; sm && t < o.nod; t++)
		objdeid_set_samples(o.od[t], sm);   /* freed at the end */
	int fd = 0;
	if (strcmp(input, "-")) {
		fd = open(input, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			mlk_error_errno(&e, input, "cannot open");
			mlk_error_print(mlk_progname, &e);
			deid_free(d);
			vault_abort(o.vw);
			profile_release(&prof);
			keyed_release(&k);
			return MLK_SYSTEM;
		}
	}
	int has_scrub = 0;
	for (size_t i = 0; i < prof.nrules; i++)
		has_scrub |= prof.rules[i].method == DM_SCRUB;
	struct stat sst;
	if (has_scrub && (fstat(fd, &sst) != 0 || !S_ISREG(sst.st_mode))) {
		/* Scrubbing reads the input twice (the patients first):
		 * a pipe is copied to a temporary file, so that a pipe and
		 * a file give the same bytes. */
		FILE *spool = tmpfile();
		int sfd = spool ? dup(fileno(spool)) : -1;
		if (spool)
			fclose(spool);
		if (sfd < 0 || copy_fd(fd, sfd) != 0 ||
		    lseek(sfd, 0, SEEK_SET) != 0) {
			mlk_warn("cannot copy the input to a temporary file: %s",
				 strerror(errno));
			return MLK_SYSTEM;
		}
		if (fd > 0)
			close(fd);
		fd = sfd;
	}
	if (kval) {
		o.ka = kanon_new(quasi, nquasi, kval);
		if (suppress && !(o.spool = tmpfile())) {
			mlk_warn("cannot make a temporary file: %s",
				 strerror(errno));
			return MLK_SYSTEM;
		}
	}
	static char stdout_buf[1 << 20];
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);
	struct deid_sink sink = { &o, sink_write, sink_reject,
				  has_encrypt ? sink_vault : NULL };
	enum mlk_status rs = deid_run(d, fd, threads, &sink, &e);
	if (o.nod)
		drain(&o);   /* the last records held back */
	if (fd > 0)
		close(fd);
	if (rs != MLK_OK && e.status != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	if (o.vault_failed) {
		mlk_error_print(mlk_progname, &o.ve);
		rs = o.ve.status;
	}
	unsigned long long suppressed = 0;
	if (o.spool && rs == MLK_OK && o.ok)
		suppressed = release_spool(&o, kval);
	if (fflush(stdout) != 0 && o.ok) {
		mlk_warn("cannot write records to stdout: %s", strerror(errno));
		o.ok = 0;
	}
	if (!o.ok && rs == MLK_OK)
		rs = MLK_SYSTEM;
	size_t vault_n = 0;
	if (o.vw) {
		if (rs == MLK_OK) {
			if (vault_commit(o.vw, &vault_n, &e) != MLK_OK) {
				mlk_error_print(mlk_progname, &e);
				rs = MLK_SYSTEM;
			}
		} else {
			vault_abort(o.vw);
		}
	}

	const struct deid_counts *cn = deid_counts(d);
	int status = rs;
	if (rs == MLK_OK && (cn->rejected || o.obj_rejected))
		status = MLK_PARTIAL;
	struct buf dropped = BUF_INIT;
	deid_dropped(d, print_dropped, &dropped);
	if (cn->no_patient)
		mlk_warn("%llu dates of records without a patient kept only "
			 "their year (no offset to shift them by)",
			 cn->no_patient);
	unsigned long long nobjects = 0, nsuperseded = 0;
	for (int t = 0; t < o.nod; t++) {
		nobjects += objdeid_count(o.od[t]);
		nsuperseded += objdeid_superseded(o.od[t]);
	}
	if (nsuperseded)
		mlk_warn("%llu index records left out: each de-identified "
			 "object carries its own index (_mlk.index)",
			 nsuperseded);

	if (o.ka) {
		struct buf kr = BUF_INIT;
		kanon_report(o.ka, suppressed, &kr);
		if (kreport) {
			struct mlk_error re = MLK_ERROR_INIT;
			if (write_report(kreport, &kr, &re) != MLK_OK) {
				mlk_error_print(mlk_progname, &re);
				status = MLK_SYSTEM;
			}
		} else {
			fwrite(kr.data, 1, kr.len, stderr);
		}
		buf_release(&kr);
	}

	/* One event per run: input by hash and count, never a value. */
	struct buf in = BUF_INIT, outb = BUF_INIT, det = BUF_INIT;
	buf_addf(&in, "[{\"records\":%llu,\"rejected\":%llu}]",
		 cn->records + cn->rejected, cn->rejected);
	buf_addf(&outb, "[{\"records\":%llu}]",
		 o.out_records - suppressed);
	buf_addstr(&det, "{\"profile\":");
	buf_add_json_cstr(&det, prof.name);
	buf_addf(&det, ",\"profile_sha256\":\"%s\",\"key_id\":\"%s\","
		 "\"project\":", prof.sha256, k.key_id);
	buf_add_json_cstr(&det, project);
	buf_addf(&det, ",\"tokens\":%llu,\"shifted\":%llu,\"scrubbed\":%llu,"
		 "\"vault_entries\":%zu,\"suppressed\":%llu,"
		 "\"dropped_fields\":[", cn->tokens, cn->shifted, cn->scrubbed,
		 vault_n, suppressed);
	buf_add(&det, dropped.data ? dropped.data : "", dropped.len);
	buf_add(&det, "]", 1);
	if (o.nod && (nobjects || o.obj_rejected || nsuperseded))
		buf_addf(&det, ",\"objects\":%llu,\"objects_left_out\":%llu,"
			 "\"indexes_superseded\":%llu", nobjects,
			 o.obj_rejected, nsuperseded);
	buf_add(&det, "}", 1);
	audit_run(&k, "deid", purpose, in.data, outb.data, det.data, NULL,
		  status);
	buf_release(&in);
	buf_release(&outb);
	buf_release(&det);
	buf_release(&dropped);
	kanon_free(o.ka);
	for (int t = 0; t < o.nod; t++)
		objdeid_free(o.od[t]);
	samplemap_free(sm);
	for (size_t i = 0; i < o.lines_alloc; i++)
		buf_release(&o.lines[i].out);
	free(o.lines);
	buf_release(&o.held);
	for (size_t i = 0; i < nquasi; i++)
		free(quasi[i]);
	free(quasi);
	deid_free(d);
	profile_release(&prof);
	keyed_release(&k);
	return status;
}
