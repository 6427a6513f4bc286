/*
 * mlk-catalog — the lake's front door: creates a lake, keeps its dataset
 * descriptors (add, set, show, list, search, refresh, reindex) and reads
 * a dataset's records back out with partition pruning (scan).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "audit.h"
#include "buf.h"
#include "catalog.h"
#include "crypto.h"
#include "expect.h"
#include "fsio.h"
#include "lake.h"
#include "lifecycle.h"
#include "model.h"
#include "policy.h"
#include "record.h"
#include "scan.h"
#include "snapshot.h"
#include "status.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_text[] =
"usage: mlk-catalog init DIR\n"
"       mlk-catalog [--lake DIR] COMMAND ...\n"
"       mlk-catalog add DATASET [KEY=VALUE ...]\n"
"       mlk-catalog set DATASET KEY=VALUE ...\n"
"       mlk-catalog show DATASET\n"
"       mlk-catalog list\n"
"       mlk-catalog search TERM ...\n"
"       mlk-catalog refresh DATASET\n"
"       mlk-catalog reindex\n"
"       mlk-catalog scan ZONE/DATASET [--version ID] [--where CONDITIONS]\n"
"                   [--purpose TEXT] [--project P]\n"
"       mlk-catalog request DATASET --purpose TEXT [--project P]\n"
"                   [--action ACTION] [--zone ZONE]\n"
"       mlk-catalog approve REQUEST\n"
"       mlk-catalog deny REQUEST\n"
"       mlk-catalog grants [--user U]\n"
"       mlk-catalog vocab check\n"
"       mlk-catalog check DATASET [--snapshot ID] [--expectations FILE]\n"
"                   [--defaults NAME] [--reference ID] [--purpose TEXT]\n"
"       mlk-catalog model register NAME --snapshot ID --code REF\n"
"                   --params FILE --metrics FILE [--dataset DATASET]\n"
"       mlk-catalog model promote NAME@VERSION --to STAGE\n"
"       mlk-catalog model show NAME[@VERSION]\n"
"       mlk-catalog model list\n"
"\n"
"Create a lake; describe its datasets in catalog/datasets/*.yaml and find\n"
"them (TERM: KEY=VALUE or free text, through vocab.yaml); read a dataset's\n"
"records back with only the partitions --where allows ('year>=2022');\n"
"request access, decided by policy.yaml; register and promote models.\n"
"\n"
"  --lake DIR            the lake (else $MLK_LAKE, else the nearest one)\n"
"  --version ID          a snapshot of curated or training (the latest)\n"
"  --where CONDITIONS    KEY OP VALUE ..., OP one of = != < <= > >=\n"
"  --purpose TEXT        why, for the audit log (and grant conditions)\n"
"  --project P           the project asked for, for grant conditions\n"
"  --action ACTION       what a request asks for (read)\n"
"  --zone ZONE           the zone a request is for (raw)\n"
"  --user U              whose grants (you)\n"
"  --snapshot ID         the snapshot a model was trained on; check: the\n"
"                        snapshot whose records to check (else stdin)\n"
"  --expectations FILE   check: expectations to use (mlk-expect(5))\n"
"  --defaults NAME       check: built-in expectations, fhir or synthea\n"
"  --reference ID        check: the reference snapshot of every psi\n"
"  --code REF            the code it was trained with (a git commit)\n"
"  --params FILE         its hyperparameters, stored as given\n"
"  --metrics FILE        its validation metrics, stored as given\n"
"  --dataset DATASET     a catalogued dataset it was trained on\n"
"  --to STAGE            validated, approved, deployed or deprecated\n"
"  --help, --version\n"
"\n"
"Exit status: 0 ok, 1 values outside the vocabulary, 2 usage, 3 denied,\n"
"4 integrity, 5 system error.  See mlk-catalog(1) and mlk-catalog(5).\n";

static const char *lakedir;

static void usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static int cmd_init(int argc, char **argv)
{
	if (argc != 2) {
		mlk_warn("init takes one directory");
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	if (lake_create(argv[1], &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct lake l;
	if (lake_open(argv[1], &l, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct identity id;
	struct decision d = { 1, "owner", "" };
	enum mlk_status s = policy_identity(&l, &id, &e);
	if (s == MLK_OK) {
		char detail[128];
		snprintf(detail, sizeof detail, "{\"key_id\":\"%s\"}",
			 l.key_id ? l.key_id : "");
		struct audit_event ev = { "mlk-catalog", "init", NULL, NULL,
					  NULL, &d, NULL, NULL, detail, 0 };
		s = audit_append(&l, &id, &ev, &e);
		identity_release(&id);
	}
	if (s != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		lake_close(&l);
		return s;
	}
	printf("{\"lake\":");
	fputs("\"", stdout);
	for (const char *p = l.root; *p; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		putchar(*p);
	}
	printf("\",\"key_id\":\"%s\"}\n", l.key_id ? l.key_id : "");
	lake_close(&l);
	return 0;
}

/* The lake and the caller, for every command after init. */
struct ctx {
	struct lake l;
	struct identity id;
};

static int open_ctx(struct ctx *c)
{
	struct mlk_error e = MLK_ERROR_INIT;
	if (lake_open(lakedir, &c->l, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	if (policy_identity(&c->l, &c->id, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		lake_close(&c->l);
		return e.status;
	}
	return 0;
}

static void close_ctx(struct ctx *c)
{
	identity_release(&c->id);
	lake_close(&c->l);
}

static int check_dataset(const char *ds)
{
	if (!lake_dataset_valid(ds)) {
		mlk_warn("'%s' is not a valid dataset name", ds);
		return MLK_USAGE;
	}
	return 0;
}

static int audit(struct ctx *c, const char *action, const char *purpose,
		 const char *zone, const char *ds, const struct decision *d,
		 const char *outputs, const char *detail, int status)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct audit_event ev = { "mlk-catalog", action, purpose, zone, ds, d,
				  NULL, outputs, detail, status };
	if (audit_append(&c->l, &c->id, &ev, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	return 0;
}

/*
 * Editing a descriptor: the policy's admin action on the dataset, or
 * being the descriptor's owner or steward.  Denials are audited.
 */
static int may_edit(struct ctx *c, const char *action, const char *ds,
		    const struct ynode *desc, struct decision *d)
{
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status s = policy_check(&c->l, &c->id, "admin", NULL, ds, d,
					 &e);
	if (s != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		audit(c, action, NULL, NULL, ds, d, NULL, NULL, MLK_DENIED);
		return MLK_DENIED;
	}
	if (!d->allow && desc) {
		const char *o = ynode_str(desc, "owner");
		const char *st = ynode_str(desc, "steward");
		if ((o && !strcmp(o, c->id.user)) ||
		    (st && !strcmp(st, c->id.user))) {
			d->allow = 1;
			snprintf(d->rule, sizeof d->rule, "descriptor-%s",
				 o && !strcmp(o, c->id.user) ? "owner"
							     : "steward");
		}
	}
	if (d->allow)
		return 0;
	audit(c, action, NULL, NULL, ds, d, NULL, NULL, MLK_DENIED);
	mlk_warn("%s of %s denied for user '%s' by policy rule '%s'", action,
		 ds, c->id.user, d->rule);
	return MLK_DENIED;
}

/* The names of the keys a command set, for the audit log (not values). */
static void keys_json(char **kv, int n, struct buf *out)
{
	buf_addstr(out, "{\"keys\":[");
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		if (i)
			buf_addch(out, ',');
		buf_add_json_str(out, kv[i],
				 eq ? (size_t)(eq - kv[i]) : strlen(kv[i]));
	}
	buf_addstr(out, "]}");
}

/* keys: save only these (set), so that a tool's concurrent update of
 * the other keys is not lost; NULL: the whole descriptor. */
static int save_and_audit(struct ctx *c, const char *action,
			  const struct ynode *desc, const char *ds,
			  const struct decision *d, const char *detail,
			  char **keys, size_t nkeys)
{
	struct mlk_error e = MLK_ERROR_INIT;
	enum mlk_status s = keys ? catalog_save_keys(&c->l, desc, keys, nkeys,
						     &e)
				 : catalog_save(&c->l, desc, &e);
	if (s != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct buf out = BUF_INIT;
	buf_addstr(&out, "[{\"descriptor\":");
	buf_add_json_cstr(&out, ds);
	buf_addstr(&out, "}]");
	int st = audit(c, action, NULL, NULL, ds, d, out.data, detail, 0);
	buf_release(&out);
	return st;
}

static void print_json(const struct ynode *desc)
{
	struct buf b = BUF_INIT;
	catalog_json(desc, &b);
	buf_addch(&b, '\n');
	fwrite(b.data, 1, b.len, stdout);
	buf_release(&b);
}

static int cmd_add_set(struct ctx *c, int add, int argc, char **argv)
{
	const char *action = add ? "catalog.add" : "catalog.set";
	if (argc < 2 || (!add && argc < 3)) {
		mlk_warn("%s takes a dataset and %sKEY=VALUE", argv[0],
			 add ? "optionally " : "");
		usage(MLK_USAGE);
	}
	const char *ds = argv[1];
	int st = check_dataset(ds);
	if (st)
		return st;
	struct mlk_error e = MLK_ERROR_INIT;
	struct ynode *desc = NULL;
	struct decision d;
	time_t now = lake_now(&c->l);
	if (add && catalog_exists(&c->l, ds)) {
		/* A descriptor that only ingest or snapshot made is
		 * catalogued by a person once. */
		if (catalog_load(&c->l, ds, &desc, &e) != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			return e.status;
		}
		const char *by = ynode_str(desc, "added_by");
		if (!by || *by) {
			mlk_warn("dataset '%s' is already in the catalog", ds);
			ynode_free(desc);
			return MLK_USAGE;
		}
		if ((st = may_edit(c, action, ds, desc, &d))) {
			ynode_free(desc);
			return st;
		}
	} else if (add) {
		if ((st = may_edit(c, action, ds, NULL, &d)))
			return st;
		desc = catalog_new(ds, c->id.user, now);
	} else {
		if (catalog_load(&c->l, ds, &desc, &e) != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			return e.status;
		}
		if ((st = may_edit(c, action, ds, desc, &d))) {
			ynode_free(desc);
			return st;
		}
	}
	for (int i = 2; i < argc; i++) {
		if (catalog_set(desc, argv[i], &e) != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			ynode_free(desc);
			return e.status;
		}
	}
	if (add)
		catalog_map_put(desc, "added_by",
				catalog_scalar(c->id.user, 1));
	/* A new descriptor starts from what the lake already holds. */
	if (add && catalog_refresh(&c->l, desc, now, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		ynode_free(desc);
		return e.status;
	}
	struct buf det = BUF_INIT;
	keys_json(argv + 2, argc - 2, &det);
	/* The names of the keys set: set saves only those. */
	char **names = xcalloc((size_t)argc, sizeof *names);
	size_t nnames = 0;
	for (int i = 2; i < argc; i++)
		names[nnames++] = xstrndup(argv[i], strcspn(argv[i], "="));
	st = save_and_audit(c, action, desc, ds, &d, det.data,
			    add ? NULL : names, nnames);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	buf_release(&det);
	if (!st)
		print_json(desc);
	ynode_free(desc);
	return st;
}

static int cmd_refresh(struct ctx *c, int argc, char **argv)
{
	if (argc != 2) {
		mlk_warn("refresh takes one dataset");
		usage(MLK_USAGE);
	}
	const char *ds = argv[1];
	int st = check_dataset(ds);
	if (st)
		return st;
	struct mlk_error e = MLK_ERROR_INIT;
	struct ynode *desc = NULL;
	struct decision d;
	if (catalog_load(&c->l, ds, &desc, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	if ((st = may_edit(c, "catalog.refresh", ds, desc, &d)) == 0) {
		if (catalog_refresh(&c->l, desc, lake_now(&c->l), &e) !=
		    MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			st = e.status;
		} else {
			char *dk[] = { "derived" };
			st = save_and_audit(c, "catalog.refresh", desc, ds,
					    &d, NULL, dk, 1);
			if (!st)
				print_json(desc);
		}
	}
	ynode_free(desc);
	return st;
}

static int cmd_show(struct ctx *c, int argc, char **argv)
{
	if (argc != 2) {
		mlk_warn("show takes one dataset");
		usage(MLK_USAGE);
	}
	int st = check_dataset(argv[1]);
	if (st)
		return st;
	struct mlk_error e = MLK_ERROR_INIT;
	struct ynode *desc = NULL;
	if (catalog_load(&c->l, argv[1], &desc, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	/* Holds and retention as they are now (lifecycle.h). */
	if (lc_describe(&c->l, desc, lake_now(&c->l), &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		ynode_free(desc);
		return e.status;
	}
	if (mlk_isatty(1)) {
		struct buf b = BUF_INIT;
		catalog_yaml(desc, &b);
		fwrite(b.data, 1, b.len, stdout);
		buf_release(&b);
	} else {
		print_json(desc);
	}
	ynode_free(desc);
	return 0;
}

static int cmd_reindex(struct ctx *c, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		mlk_warn("reindex takes no arguments");
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	size_t n = 0;
	if (catalog_reindex(&c->l, &n, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	printf("{\"indexed\":%zu}\n", n);
	return 0;
}

/* A table for a person at a terminal; NDJSON otherwise. */
struct out {
	int table;
	unsigned long long n;
	struct rec r;
	struct buf tmp;
};

static void cell(struct out *o, const char *key, const char *sub, int width)
{
	int k = rec_get(&o->r, 0, key);
	if (k >= 0 && sub)
		k = rec_get(&o->r, k + 1, sub);
	else if (k >= 0)
		k = k + 1;
	buf_reset(&o->tmp);
	if (k >= 0 && rec_type(&o->r, k) == REC_STRING)
		rec_str(&o->r, k, &o->tmp);
	else if (k >= 0 && rec_type(&o->r, k) == REC_PRIMITIVE) {
		size_t n;
		const char *p = rec_raw(&o->r, k, &n);
		buf_add(&o->tmp, p, n);
	}
	const char *s = o->tmp.data ? o->tmp.data : "";
	if (width)
		printf("%-*.*s ", width, width, s);
	else
		printf("%s\n", s);
}

static int out_line(void *ctx, const char *line, size_t len)
{
	struct out *o = ctx;
	o->n++;
	if (!o->table) {
		fwrite(line, 1, len, stdout);
		putchar('\n');
		return 0;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	if (rec_parse(&o->r, line, len, &e) != MLK_OK)
		return 0;
	cell(o, "dataset", NULL, 24);
	cell(o, "owner", NULL, 12);
	cell(o, "sensitivity", NULL, 12);
	cell(o, "derived", "records", 10);
	cell(o, "description", NULL, 0);
	return 0;
}

static int cmd_search(struct ctx *c, int argc, char **argv)
{
	int list = !strcmp(argv[0], "list");
	if (list && argc != 1) {
		mlk_warn("list takes no arguments; use search");
		usage(MLK_USAGE);
	}
	if (!list && argc < 2) {
		mlk_warn("search takes at least one term");
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct vocab v;
	if (vocab_load(&c->l, &v, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct out o;
	memset(&o, 0, sizeof o);
	o.table = mlk_isatty(1);
	rec_init(&o.r);
	if (o.table)
		printf("%-24s %-12s %-12s %-10s %s\n", "DATASET", "OWNER",
		       "SENSITIVITY", "RECORDS", "DESCRIPTION");
	enum mlk_status s = catalog_search(&c->l, &v, argv + 1,
					   (size_t)(argc - 1), out_line, &o,
					   &e);
	if (s != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	rec_release(&o.r);
	buf_release(&o.tmp);
	vocab_release(&v);
	return s;
}

static int scan_out(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	if (fwrite(line, 1, len, stdout) != len)
		return MLK_SYSTEM;
	return 0;
}

/*
 * scan of curated or training: a version's records (the latest when
 * version is NULL), only the files whose partition --where allows.
 */
static int scan_snapshot(struct ctx *c, const char *zone, const char *ds,
			 const char *version, const char *where,
			 const char *purpose, const char *project)
{
	struct mlk_error e = MLK_ERROR_INIT;
	struct snap_where *w = NULL;
	if (where && snap_where_parse(where, &w, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct decision d;
	struct policy_ctx pc = { purpose, project };
	if (policy_check_ctx(&c->l, &c->id, "read", zone, ds, &pc, &d, &e) !=
	    MLK_OK)
		mlk_error_print(mlk_progname, &e);
	if (!d.allow) {
		audit(c, "read", purpose, zone, ds, &d, NULL, NULL,
		      MLK_DENIED);
		mlk_warn("read of %s/%s denied for user '%s' by policy rule "
			 "'%s'", zone, ds, c->id.user, d.rule);
		snap_where_free(w);
		return MLK_DENIED;
	}
	struct snapshot sn;
	enum mlk_status s;
	int found = 1;
	if (version)
		s = snap_load(&c->l, version, &sn, &e);
	else
		s = snap_latest(&c->l, zone, ds, &sn, &found, &e);
	if (s != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		snap_where_free(w);
		return s;
	}
	if (!found) {
		mlk_warn("%s/%s has no snapshots", zone, ds);
		snap_where_free(w);
		return MLK_USAGE;
	}
	const char *unknown = NULL;
	if (strcmp(sn.zone, zone) || strcmp(sn.dataset, ds)) {
		mlk_warn("snapshot %s is a version of %s/%s, not of %s/%s",
			 sn.id, sn.zone, sn.dataset, zone, ds);
		s = MLK_USAGE;
	} else if (w && (unknown = snap_where_unknown(w, &sn))) {
		mlk_warn("'%s' is not a partition key of %s/%s", unknown,
			 zone, ds);
		s = MLK_USAGE;
	}
	unsigned long long records = 0, files = 0;
	if (s == MLK_OK) {
		for (size_t i = 0; i < sn.nf; i++)
			files += snap_where_match(w, sn.f[i].partition);
		s = snap_cat(&c->l, &sn, w, scan_out, NULL, &records, &e);
		if (fflush(stdout) && s == MLK_OK)
			s = mlk_error_errno(&e, NULL, "cannot write records");
		if (s != MLK_OK)
			mlk_error_print(mlk_progname, &e);
	}
	char outputs[128], detail[192];
	snprintf(outputs, sizeof outputs, "[{\"records\":%llu}]", records);
	snprintf(detail, sizeof detail,
		 "{\"snapshot\":\"%s\",\"version\":%lld,\"files\":%llu,"
		 "\"pruned\":%llu}", sn.id, sn.version, files,
		 (unsigned long long)sn.nf - files);
	int ast = s == MLK_USAGE ? 0 :
		  audit(c, "read", purpose, zone, ds, &d, outputs, detail, s);
	snap_release(&sn);
	snap_where_free(w);
	return s ? (int)s : ast;
}

static int cmd_scan(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "where", required_argument, NULL, 'w' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "project", required_argument, NULL, 'P' },
		{ "version", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const char *where = NULL, *purpose = NULL, *project = NULL;
	const char *version = NULL;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'w': where = optarg; break;
		case 'v': version = optarg; break;
		case 'p': purpose = optarg; break;
		case 'P': project = optarg; break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (argc - optind != 1) {
		mlk_warn("scan takes one ZONE/DATASET");
		usage(MLK_USAGE);
	}
	const char *arg = argv[optind];
	const char *sl = strchr(arg, '/');
	char zone[16] = "";
	if (sl && (size_t)(sl - arg) < sizeof zone) {
		memcpy(zone, arg, (size_t)(sl - arg));
		zone[sl - arg] = '\0';
	}
	if (!sl || !lake_zone_valid(zone)) {
		mlk_warn("'%s' does not start with a zone (raw, curated, "
			 "training)", arg);
		return MLK_USAGE;
	}
	const char *ds = sl + 1;
	int st = check_dataset(ds);
	if (st)
		return st;
	if (!strcmp(zone, "raw") && version) {
		mlk_warn("raw/%s has batches, not versions: --version reads "
			 "curated or training", ds);
		return MLK_USAGE;
	}
	if (version && !snap_id_valid(version)) {
		mlk_warn("'%s' is not a snapshot id", version);
		return MLK_USAGE;
	}
	if (strcmp(zone, "raw"))
		return scan_snapshot(c, zone, ds, version, where, purpose,
				     project);
	struct mlk_error e = MLK_ERROR_INIT;
	struct scan_filter f;
	if (scan_filter_parse(where ? where : "", &f, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	struct decision d;
	struct policy_ctx pc = { purpose, project };
	if (policy_check_ctx(&c->l, &c->id, "read", zone, ds, &pc, &d, &e) !=
	    MLK_OK)
		mlk_error_print(mlk_progname, &e);
	if (!d.allow) {
		audit(c, "read", purpose, zone, ds, &d, NULL, NULL,
		      MLK_DENIED);
		mlk_warn("read of %s/%s denied for user '%s' by policy rule "
			 "'%s'", zone, ds, c->id.user, d.rule);
		scan_filter_release(&f);
		return MLK_DENIED;
	}
	struct scan_stats ss;
	enum mlk_status s = scan_dataset(&c->l, ds, &f, scan_out, NULL, &ss,
					 &e);
	if (fflush(stdout) && s == MLK_OK)
		s = mlk_error_errno(&e, NULL, "cannot write records");
	if (s != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	for (size_t i = 0; s == MLK_OK && i < f.n; i++) {
		if (!f.c[i].seen && ss.files + ss.pruned) {
			mlk_warn("'%s' is not a partition key of %s/%s",
				 f.c[i].key, zone, ds);
			s = MLK_USAGE;
		}
	}
	char outputs[128], detail[160];
	snprintf(outputs, sizeof outputs, "[{\"records\":%llu}]", ss.records);
	snprintf(detail, sizeof detail,
		 "{\"batches\":%llu,\"files\":%llu,\"pruned\":%llu}",
		 ss.batches, ss.files, ss.pruned);
	int ast = audit(c, "read", purpose, zone, ds, &d, outputs, detail, s);
	scan_filter_release(&f);
	return s ? (int)s : ast;
}

static const char *const actions[] = {
	"ingest", "read", "write", "export", "sandbox", "rehydrate",
	"approve", "admin",
};

static int audit_request(struct ctx *c, const char *action,
			 const struct access_req *r, const struct decision *d,
			 int status)
{
	struct buf det = BUF_INIT;
	buf_addstr(&det, "{\"request\":");
	buf_add_json_cstr(&det, r->id);
	buf_addstr(&det, ",\"action\":");
	buf_add_json_cstr(&det, r->action);
	buf_addstr(&det, ",\"status\":");
	buf_add_json_cstr(&det, r->status);
	if (r->project && *r->project) {
		buf_addstr(&det, ",\"project\":");
		buf_add_json_cstr(&det, r->project);
	}
	if (r->expires[0])
		buf_addf(&det, ",\"expires\":\"%s\"", r->expires);
	buf_addch(&det, '}');
	int st = audit(c, action, r->purpose, r->zone, r->dataset, d, NULL,
		       det.data, status);
	buf_release(&det);
	return st;
}

static void print_req(const struct access_req *r)
{
	struct buf b = BUF_INIT;
	access_json(r, &b);
	buf_addch(&b, '\n');
	fwrite(b.data, 1, b.len, stdout);
	buf_release(&b);
}

static void set_expiry(struct access_req *r, time_t now)
{
	lake_time_iso(now, r->decided);
	lake_time_iso(now + (time_t)r->days * 86400, r->expires);
}

static int cmd_request(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "purpose", required_argument, NULL, 'p' },
		{ "project", required_argument, NULL, 'P' },
		{ "action", required_argument, NULL, 'a' },
		{ "zone", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	const char *purpose = NULL, *project = NULL;
	const char *action = "read", *zone = "raw";
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': purpose = optarg; break;
		case 'P': project = optarg; break;
		case 'a': action = optarg; break;
		case 'z': zone = optarg; break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (argc - optind != 1) {
		mlk_warn("request takes one dataset");
		usage(MLK_USAGE);
	}
	const char *ds = argv[optind];
	int st = check_dataset(ds);
	if (st)
		return st;
	if (!purpose || !*purpose) {
		mlk_warn("a request needs --purpose");
		return MLK_USAGE;
	}
	int known = 0;
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
		known |= !strcmp(action, actions[i]);
	if (!known) {
		mlk_warn("unknown action '%s'", action);
		return MLK_USAGE;
	}
	if (!lake_zone_valid(zone)) {
		mlk_warn("unknown zone '%s'", zone);
		return MLK_USAGE;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct policy_ctx pc = { purpose, project };
	struct request_decision rd;
	if (policy_request(&c->l, &c->id, action, zone, ds, &pc, &rd, &e) !=
	    MLK_OK)
		mlk_error_print(mlk_progname, &e);
	time_t now = lake_now(&c->l);
	struct access_req r;
	memset(&r, 0, sizeof r);
	r.user = xstrdup(c->id.user);
	r.action = xstrdup(action);
	r.zone = xstrdup(zone);
	r.dataset = xstrdup(ds);
	r.purpose = xstrdup(purpose);
	r.project = xstrdup(project ? project : "");
	r.rule = xstrdup(rd.rule);
	r.approver = xstrdup(rd.approver);
	r.days = rd.days;
	lake_time_iso(now, r.created);
	if (rd.verdict == PV_GRANT) {
		r.status = xstrdup("granted");
		r.decided_by = xstrdup("policy");
		set_expiry(&r, now);
	} else if (rd.verdict == PV_QUEUE) {
		r.status = xstrdup("queued");
		r.decided_by = xstrdup("");
	} else {
		r.status = xstrdup("denied");
		r.decided_by = xstrdup("policy");
		lake_time_iso(now, r.decided);
	}
	st = rd.verdict == PV_DENY ? MLK_DENIED : 0;
	if (access_new_id(&r, &e) != MLK_OK ||
	    access_save(&c->l, &r, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		access_req_release(&r);
		return e.status;
	}
	struct decision d;
	memset(&d, 0, sizeof d);
	d.allow = rd.verdict != PV_DENY;
	snprintf(d.rule, sizeof d.rule, "%s", rd.rule);
	int ast = audit_request(c, "access.request", &r, &d, st);
	/* Decided at once: the decision is its own event, so that the time
	 * from request to decision is measured the same way for all. */
	if (!ast && rd.verdict != PV_QUEUE)
		ast = audit_request(c, "access.decide", &r, &d, st);
	print_req(&r);
	if (rd.verdict == PV_DENY)
		mlk_warn("request %s for %s on %s/%s denied for user '%s' by "
			 "policy rule '%s'", r.id, action, zone, ds,
			 c->id.user, rd.rule);
	access_req_release(&r);
	return st ? st : ast;
}

static int cmd_decide(struct ctx *c, int argc, char **argv)
{
	int approve = !strcmp(argv[0], "approve");
	if (argc != 2) {
		mlk_warn("%s takes one request id", argv[0]);
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct access_req r;
	if (access_load(&c->l, argv[1], &r, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	if (strcmp(r.status, "queued")) {
		mlk_warn("request %s is not queued (it is %s)", r.id,
			 r.status);
		access_req_release(&r);
		return MLK_USAGE;
	}
	/* The approver role named by the rule, or an approve grant; never
	 * the requester (separation of duties). */
	struct decision d;
	memset(&d, 0, sizeof d);
	if (!strcmp(r.user, c->id.user)) {
		snprintf(d.rule, sizeof d.rule, "self-approval");
	} else if (policy_in_role(&c->l, &c->id, r.approver)) {
		d.allow = 1;
		snprintf(d.rule, sizeof d.rule, "approver");
		snprintf(d.role, sizeof d.role, "%s", r.approver);
	} else if (policy_check(&c->l, &c->id, "approve", r.zone, r.dataset,
				&d, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
	}
	if (!d.allow) {
		free(r.status);
		r.status = xstrdup("queued");
		/* Not a decision: the request stays queued. */
		audit_request(c, argv[0], &r, &d, MLK_DENIED);
		mlk_warn("%s of request %s denied for user '%s' by policy "
			 "rule '%s'", argv[0], r.id, c->id.user, d.rule);
		access_req_release(&r);
		return MLK_DENIED;
	}
	time_t now = lake_now(&c->l);
	free(r.status);
	free(r.decided_by);
	r.decided_by = xstrdup(c->id.user);
	if (approve) {
		r.status = xstrdup("granted");
		set_expiry(&r, now);
	} else {
		r.status = xstrdup("denied");
		lake_time_iso(now, r.decided);
	}
	if (access_save(&c->l, &r, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		access_req_release(&r);
		return e.status;
	}
	int st = audit_request(c, "access.decide", &r, &d, 0);
	if (!st)
		print_req(&r);
	access_req_release(&r);
	return st;
}

struct grants_ctx {
	const char *user;
	time_t now;
};

static int policy_grant_cb(void *ctx, size_t index,
			   const struct ynode *grant)
{
	struct grants_ctx *g = ctx;
	struct buf b = BUF_INIT;
	buf_addstr(&b, "{\"user\":");
	buf_add_json_cstr(&b, g->user);
	buf_addf(&b, ",\"rule\":\"grants[%zu]\",\"grant\":", index);
	catalog_json(grant, &b);
	buf_addstr(&b, "}\n");
	fwrite(b.data, 1, b.len, stdout);
	buf_release(&b);
	return 0;
}

static int grants_cb(void *ctx, const struct access_req *r)
{
	struct grants_ctx *g = ctx;
	if (strcmp(r->user, g->user) || !access_in_force(r, g->now))
		return 0;
	print_req(r);
	return 0;
}

static int cmd_grants(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = c->id.user;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u': user = optarg; break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (argc != optind) {
		mlk_warn("grants takes no arguments");
		usage(MLK_USAGE);
	}
	struct grants_ctx g = { user, lake_now(&c->l) };
	struct mlk_error e = MLK_ERROR_INIT;
	/* The policy's own grants for the user, then granted requests. */
	struct identity other;
	int self = !strcmp(user, c->id.user);
	if (!self)
		policy_identity_of(user, &other);
	enum mlk_status s = policy_grants_of(&c->l, self ? &c->id : &other,
					     policy_grant_cb, &g, &e);
	if (!self)
		identity_release(&other);
	if (s != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	if (access_list(&c->l, grants_cb, &g, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	return 0;
}

/* vocab check: values of the controlled keys that are not terms. */
struct vcheck {
	const struct vocab *v;
	const struct ynode *fields;
	unsigned long long outside;
	struct rec r;
	struct buf tmp, ds;
};

static int vcheck_line(void *ctx, const char *line, size_t len)
{
	struct vcheck *vc = ctx;
	struct mlk_error e = MLK_ERROR_INIT;
	if (rec_parse(&vc->r, line, len, &e) != MLK_OK)
		return 0;
	buf_reset(&vc->ds);
	rec_str(&vc->r, rec_get(&vc->r, 0, "dataset"), &vc->ds);
	for (size_t i = 0; i < vc->fields->n; i++) {
		const struct ynode *f = vc->fields->items[i];
		if (f->type != YNODE_SCALAR)
			continue;
		int k = rec_get(&vc->r, 0, f->scalar);
		if (k < 0 || rec_type(&vc->r, k) != REC_STRING)
			continue;
		buf_reset(&vc->tmp);
		rec_str(&vc->r, k, &vc->tmp);
		if (!vc->tmp.len ||
		    vocab_preferred(vc->v, vc->tmp.data, vc->tmp.len))
			continue;
		vc->outside++;
		struct buf o = BUF_INIT;
		buf_addstr(&o, "{\"dataset\":");
		buf_add_json_cstr(&o, vc->ds.data ? vc->ds.data : "");
		buf_addstr(&o, ",\"key\":");
		buf_add_json_cstr(&o, f->scalar);
		buf_addstr(&o, ",\"value\":");
		buf_add_json_str(&o, vc->tmp.data, vc->tmp.len);
		buf_addstr(&o, "}\n");
		fwrite(o.data, 1, o.len, stdout);
		buf_release(&o);
	}
	return 0;
}

static int cmd_vocab(struct ctx *c, int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[1], "check")) {
		mlk_warn("vocab takes one command: check");
		usage(MLK_USAGE);
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct vocab v;
	if (vocab_load(&c->l, &v, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	char *p = lake_path(&c->l, "vocab.yaml");
	struct ynode *y = NULL;
	enum mlk_status s = ynode_load_file(p, &y, &e);
	free(p);
	if (s != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		vocab_release(&v);
		return s;
	}
	struct vcheck vc;
	memset(&vc, 0, sizeof vc);
	vc.v = &v;
	vc.fields = ynode_get(y, "keys");
	if (vc.fields && vc.fields->type == YNODE_SEQ) {
		rec_init(&vc.r);
		s = catalog_search(&c->l, &v, NULL, 0, vcheck_line, &vc, &e);
		if (s != MLK_OK)
			mlk_error_print(mlk_progname, &e);
		rec_release(&vc.r);
	}
	buf_release(&vc.tmp);
	buf_release(&vc.ds);
	ynode_free(y);
	vocab_release(&v);
	if (s == MLK_OK && vc.outside) {
		mlk_warn("%llu catalogued values are outside the vocabulary",
			 vc.outside);
		return MLK_PARTIAL;
	}
	return s;
}

static int model_print(void *ctx, const struct ynode *ent)
{
	(void)ctx;
	print_json(ent);
	return 0;
}

static int model_register_cmd(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "snapshot", required_argument, NULL, 's' },
		{ "code", required_argument, NULL, 'c' },
		{ "params", required_argument, NULL, 'p' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "dataset", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct model_reg m;
	memset(&m, 0, sizeof m);
	const char **dss = xcalloc((size_t)argc, sizeof *dss);
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': m.snapshot = optarg; break;
		case 'c': m.code = optarg; break;
		case 'p': m.params_path = optarg; break;
		case 'm': m.metrics_path = optarg; break;
		case 'd':
			if (check_dataset(optarg)) {
				free(dss);
				return MLK_USAGE;
			}
			dss[m.ndatasets++] = optarg;
			break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (argc - optind != 1 || !m.snapshot || !m.code || !m.params_path ||
	    !m.metrics_path) {
		mlk_warn("model register takes NAME, --snapshot, --code, "
			 "--params and --metrics");
		usage(MLK_USAGE);
	}
	m.name = argv[optind];
	m.datasets = dss;
	m.user = c->id.user;
	m.now = lake_now(&c->l);
	struct mlk_error e = MLK_ERROR_INIT;
	struct decision d;
	if (policy_check(&c->l, &c->id, "write", NULL, NULL, &d, &e) !=
	    MLK_OK)
		mlk_error_print(mlk_progname, &e);
	if (!d.allow) {
		audit(c, "model.register", NULL, NULL, NULL, &d, NULL, NULL,
		      MLK_DENIED);
		mlk_warn("model register denied for user '%s' by policy rule "
			 "'%s'", c->id.user, d.rule);
		free(dss);
		return MLK_DENIED;
	}
	long long v = 0;
	int st = 0;
	if (model_register(&c->l, &m, &v, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		st = e.status;
	} else {
		struct buf in = BUF_INIT, out = BUF_INIT;
		buf_addstr(&in, "[{\"snapshot\":");
		buf_add_json_cstr(&in, m.snapshot);
		buf_addstr(&in, "}]");
		buf_addf(&out, "[{\"model\":\"%s@%lld\"}]", m.name, v);
		struct audit_event ev = { "mlk-catalog", "model.register",
					  NULL, NULL, NULL, &d, in.data,
					  out.data, NULL, 0 };
		if (audit_append(&c->l, &c->id, &ev, &e) != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			st = e.status;
		}
		buf_release(&in);
		buf_release(&out);
		struct ynode *ent = NULL;
		if (!st && model_load(&c->l, m.name, v, &ent, &e) == MLK_OK) {
			print_json(ent);
			ynode_free(ent);
		}
	}
	free(dss);
	return st;
}

static int model_promote_cmd(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *to = NULL;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': to = optarg; break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	char name[65];
	long long v;
	if (argc - optind != 1 || !to) {
		mlk_warn("model promote takes NAME@VERSION and --to");
		usage(MLK_USAGE);
	}
	if (!model_ref_parse(argv[optind], name, &v)) {
		mlk_warn("'%s' is not NAME@VERSION", argv[optind]);
		return MLK_USAGE;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct decision d;
	if (policy_check(&c->l, &c->id, "approve", NULL, NULL, &d, &e) !=
	    MLK_OK)
		mlk_error_print(mlk_progname, &e);
	char det[256];
	snprintf(det, sizeof det, "{\"model\":\"%s@%lld\",\"to\":\"%s\"}",
		 name, v, !strcmp(to, "validated") || !strcmp(to, "approved")
		 || !strcmp(to, "deployed") || !strcmp(to, "deprecated") ?
		 to : "");
	if (!d.allow) {
		audit(c, "model.promote", NULL, NULL, NULL, &d, NULL, det,
		      MLK_DENIED);
		mlk_warn("model promote denied for user '%s' by policy rule "
			 "'%s'", c->id.user, d.rule);
		return MLK_DENIED;
	}
	char from[32];
	if (model_promote(&c->l, name, v, to, c->id.user, lake_now(&c->l),
			  from, &e) != MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		return e.status;
	}
	char out[128];
	snprintf(out, sizeof out, "[{\"model\":\"%s@%lld\"}]", name, v);
	int st = audit(c, "model.promote", NULL, NULL, NULL, &d, out, det, 0);
	struct ynode *ent = NULL;
	if (!st && model_load(&c->l, name, v, &ent, &e) == MLK_OK) {
		print_json(ent);
		ynode_free(ent);
	}
	return st;
}

static int cmd_model(struct ctx *c, int argc, char **argv)
{
	if (argc < 2) {
		mlk_warn("model takes a command: register, promote, show, "
			 "list");
		usage(MLK_USAGE);
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "register"))
		return model_register_cmd(c, argc - 1, argv + 1);
	if (!strcmp(sub, "promote"))
		return model_promote_cmd(c, argc - 1, argv + 1);
	struct mlk_error e = MLK_ERROR_INIT;
	if (!strcmp(sub, "list") && argc == 2) {
		if (model_list(&c->l, model_print, NULL, &e) != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			return e.status;
		}
		return 0;
	}
	if (!strcmp(sub, "show") && argc == 3) {
		char name[65];
		long long v = 0;
		if (strchr(argv[2], '@')) {
			if (!model_ref_parse(argv[2], name, &v)) {
				mlk_warn("'%s' is not NAME@VERSION", argv[2]);
				return MLK_USAGE;
			}
		} else {
			snprintf(name, sizeof name, "%s", argv[2]);
		}
		struct ynode *ent = NULL;
		if (model_load(&c->l, name, v, &ent, &e) != MLK_OK) {
			mlk_error_print(mlk_progname, &e);
			return e.status;
		}
		print_json(ent);
		ynode_free(ent);
		return 0;
	}
	mlk_warn("unknown model command or arguments");
	usage(MLK_USAGE);
	return MLK_USAGE;
}

/* ---- check: quality gates (mlk-expect(5)) ---- */

static int check_may_read(void *ctx, const char *zone, const char *dataset)
{
	struct ctx *c = ctx;
	struct mlk_error e = MLK_ERROR_INIT;
	struct decision d;
	if (policy_check(&c->l, &c->id, "read", zone, dataset, &d, &e) !=
	    MLK_OK)
		mlk_error_print(mlk_progname, &e);
	else if (d.allow)
		return 0;
	audit(c, "read", NULL, zone, dataset, &d, NULL, NULL, MLK_DENIED);
	mlk_warn("read of %s/%s denied for user '%s' by policy rule '%s'",
		 zone, dataset, c->id.user, d.rule);
	return MLK_DENIED;
}

struct check_pass {
	struct expect_set *s;
	long long pos;          /* record position in the snapshot */
};

static int check_line(void *ctx, const char *line, size_t len)
{
	struct check_pass *p = ctx;
	expect_record(p->s, line, len, ++p->pos);
	return 0;
}

static int cmd_check(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "snapshot", required_argument, NULL, 's' },
		{ "expectations", required_argument, NULL, 'e' },
		{ "defaults", required_argument, NULL, 'd' },
		{ "reference", required_argument, NULL, 'r' },
		{ "purpose", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *snap = NULL, *file = NULL, *defaults = NULL;
	const char *reference = NULL, *purpose = NULL;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': snap = optarg; break;
		case 'e': file = optarg; break;
		case 'd': defaults = optarg; break;
		case 'r': reference = optarg; break;
		case 'p': purpose = optarg; break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (argc - optind != 1) {
		mlk_warn("check takes one DATASET");
		usage(MLK_USAGE);
	}
	const char *ds = argv[optind];
	int rc = check_dataset(ds);
	if (rc)
		return rc;
	if (file && defaults) {
		mlk_warn("--expectations and --defaults exclude each other");
		return MLK_USAGE;
	}
	if (reference && !snap_id_valid(reference)) {
		mlk_warn("--reference wants a snapshot id");
		return MLK_USAGE;
	}
	struct mlk_error e = MLK_ERROR_INIT;
	struct expect_set *s = NULL;
	enum mlk_status st;
	char *path = NULL;
	if (defaults) {
		const char *text = expect_default(defaults);
		if (!text) {
			mlk_warn("--defaults wants fhir or synthea");
			return MLK_USAGE;
		}
		st = expect_load_mem(defaults, text, strlen(text), &s, &e);
	} else {
		path = file ? xstrdup(file) : expect_path(&c->l, ds);
		if (!file && !fsio_exists(path)) {
			mlk_warn("%s has no expectations (catalog/expectations/"
				 "%s.yaml); name a file with --expectations",
				 ds, ds);
			free(path);
			return MLK_USAGE;
		}
		st = expect_load_file(path, &s, &e);
	}
	struct snapshot sn;
	int have_snap = 0;
	if (st == MLK_OK && snap) {
		st = snap_load(&c->l, snap, &sn, &e);
		have_snap = st == MLK_OK;
		if (have_snap && check_may_read(c, sn.zone, sn.dataset)) {
			snap_release(&sn);
			expect_free(s);
			free(path);
			return MLK_DENIED;
		}
	}
	struct expect_env env = { &c->l, lake_now(&c->l), reference,
				  check_may_read, c };
	if (st == MLK_OK)
		st = expect_prepare(s, &env, &e);
	struct check_pass cp = { s, 0 };
	if (st == MLK_OK && have_snap)
		st = snap_each_line(&c->l, &sn, check_line, &cp, &e);
	else if (st == MLK_OK)
		st = expect_run_fd(s, 0, "-", &e);
	if (st == MLK_OK)
		st = expect_finish(s, &e);
	if (st != MLK_OK) {
		if (e.status != MLK_DENIED || e.msg[0])
			mlk_error_print(mlk_progname, &e);
		if (have_snap)
			snap_release(&sn);
		expect_free(s);
		free(path);
		return st;
	}
	struct buf extra = BUF_INIT, rep = BUF_INIT, det = BUF_INIT;
	buf_addstr(&extra, "\"dataset\":");
	buf_add_json_cstr(&extra, ds);
	buf_addstr(&extra, ",\"source\":");
	if (have_snap)
		buf_addf(&extra, "{\"snapshot\":\"%s\"}", sn.id);
	else
		buf_addstr(&extra, "\"stdin\"");
	buf_addstr(&extra, ",\"expectations_from\":");
	buf_add_json_cstr(&extra, defaults ? defaults : file ? "file" :
			  "catalog");
	struct expect_summary sum;
	expect_report(s, have_snap ? "records" : "lines", extra.data, &rep,
		      &sum);
	fwrite(rep.data, 1, rep.len, stdout);
	char hex[SHA256_HEX];
	sha256_hex_once(rep.data, rep.len, hex);
	buf_addf(&det, "{\"verb\":\"check\",\"report_sha256\":\"%s\","
		 "\"pass\":%s,\"records\":%llu,\"expectations\":%zu,"
		 "\"failed_blocking\":", hex, sum.pass ? "true" : "false",
		 sum.records, sum.expectations);
	expect_failed_names(s, &det);
	if (have_snap)
		buf_addf(&det, ",\"snapshot\":\"%s\"", sn.id);
	buf_addch(&det, '}');
	rc = sum.pass ? MLK_OK : MLK_PARTIAL;
	int ast = audit(c, "check", purpose, have_snap ? sn.zone : NULL, ds,
			NULL, NULL, det.data, rc);
	buf_release(&extra);
	buf_release(&rep);
	buf_release(&det);
	if (have_snap)
		snap_release(&sn);
	expect_free(s);
	free(path);
	return ast ? ast : rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lake", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	mlk_progname = "mlk-catalog";
	opterr = 0;
	/* Options end at the subcommand; it parses its own. */
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'L': lakedir = optarg; break;
		case 'h': usage(0); break;
		case 'V': puts("mlk-catalog " MLK_VERSION); return 0;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (optind >= argc) {
		mlk_warn("no command given");
		usage(MLK_USAGE);
	}
	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	if (!strcmp(cmd, "init"))
		return cmd_init(sub_argc, sub_argv);
	static const struct {
		const char *name;
		int (*fn)(struct ctx *, int, char **);
	} cmds[] = {
		{ "show", cmd_show },
		{ "list", cmd_search },
		{ "search", cmd_search },
		{ "refresh", cmd_refresh },
		{ "reindex", cmd_reindex },
		{ "scan", cmd_scan },
		{ "request", cmd_request },
		{ "approve", cmd_decide },
		{ "deny", cmd_decide },
		{ "grants", cmd_grants },
		{ "vocab", cmd_vocab },
		{ "model", cmd_model },
		{ "check", cmd_check },
	};
	int add = !strcmp(cmd, "add");
	int found = add || !strcmp(cmd, "set");
	for (size_t i = 0; !found && i < sizeof cmds / sizeof cmds[0]; i++)
		found = !strcmp(cmd, cmds[i].name);
	if (!found) {
		mlk_warn("unknown command '%s'", cmd);
		usage(MLK_USAGE);
	}
	struct ctx cx;
	int st = open_ctx(&cx);
	if (st)
		return st;
	if (add || !strcmp(cmd, "set")) {
		st = cmd_add_set(&cx, add, sub_argc, sub_argv);
	} else {
		for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
			if (!strcmp(cmd, cmds[i].name))
				st = cmds[i].fn(&cx, sub_argc, sub_argv);
	}
	if (fflush(stdout) && !st) {
		mlk_warn("cannot write to stdout");
		st = MLK_SYSTEM;
	}
	close_ctx(&cx);
	return st;
}
