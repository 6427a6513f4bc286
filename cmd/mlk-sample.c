/*
 * mlk-sample — reproducible, stratified, leak-free samples of records.
 *
 * Reads records (stdin or one file), decides by a keyed hash of each
 * record's unit (the patient by default), stamps _mlk.sample and
 * _mlk.split, and writes the sample to stdout; optionally a JSON report.
 * The engine is common/sample.c; this file parses options, finds the key,
 * reports and audits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "crypto.h"
#include "lake.h"
#include "policy.h"
#include "sample.h"
#include "status.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_text[] =
"usage: mlk-sample [--fraction P] [--per-stratum N] [--min-per-stratum M]\n"
"                  [--stratify FIELD[,FIELD...]] [--time-field FIELD]\n"
"                  [--time-bins month|quarter|year] [--split NAME=W,...]\n"
"                  [--unit FIELD] [--seed S] [--lake DIR] [--key-file FILE]\n"
"                  [--report FILE] [--audit-fields FIELD[,FIELD...]]\n"
"                  [--purpose TEXT] [FILE|-]\n"
"\n"
"Write a reproducible sample of the records read (stdin by default),\n"
"chosen by a keyed hash of each record's unit (the patient by default).\n"
"\n"
"  --fraction P          keep each unit with probability P (streaming)\n"
"  --per-stratum N       exactly N units per stratum (bottom-k; all of a\n"
"                        smaller stratum)\n"
"  --min-per-stratum M   with --fraction: at least M units per stratum\n"
"  --stratify FIELDS     strata by these fields (dotted paths)\n"
"  --time-field FIELD    a date field whose time bin joins the strata\n"
"  --time-bins BIN       month, quarter or year\n"
"  --split SPEC          label every record, e.g. train=0.8,val=0.1,test=0.1\n"
"  --unit FIELD          the sampling unit (default: the patient)\n"
"  --seed S              a number; another seed, another sample (default 0)\n"
"  --lake DIR            the lake whose key is used and audit log written\n"
"  --key-file FILE       the key (mode 0600), required when no lake is found\n"
"  --report FILE         write a JSON report of strata and distances\n"
"  --audit-fields FIELDS fields whose distributions the report compares\n"
"  --purpose TEXT        why, for the audit log\n"
"  --help, --version\n"
"\n"
"Exit status: 0 ok, 1 some records left out (no unit, not a record),\n"
"2 usage, 3 denied, 4 integrity failure, 5 system error.\n"
"See mlk-sample(1).\n";

static void usage(int status)
{
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

static char **split_list(const char *opt, const char *s, size_t *n)
{
	char **v = NULL;
	size_t alloc = 0;
	*n = 0;
	for (;;) {
		const char *c = strchr(s, ',');
		size_t len = c ? (size_t)(c - s) : strlen(s);
		if (!len) {
			mlk_warn("%s: empty field name", opt);
			usage(MLK_USAGE);
		}
		XGROW(v, alloc, *n + 1);
		v[(*n)++] = xstrndup(s, len);
		if (!c)
			break;
		s = c + 1;
	}
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static unsigned long long parse_count(const char *opt, const char *s,
				      int zero_ok)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s < '0' || *s > '9' || *end || errno || (!zero_ok && !v)) {
		mlk_warn("%s wants a whole number%s", opt,
			 zero_ok ? "" : " of at least 1");
		usage(MLK_USAGE);
	}
	return v;
}

struct out {
	const char *input;
	int ok;
};

static int out_write(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;
	if (fwrite(p, 1, n, stdout) != n) {
		if (errno != EPIPE)
			mlk_warn("cannot write records to stdout: %s",
				 strerror(errno));
		o->ok = 0;
		return 1;
	}
	return 0;
}

static void out_reject(void *ctx, long long line, const char *reason)
{
	struct out *o = ctx;
	struct mlk_error e = MLK_ERROR_INIT;
	mlk_error_set(&e, MLK_PARTIAL, o->input, line, "%s; left out",
		      reason);
	mlk_error_print(mlk_progname, &e);
}

/* Temp file beside it, fsync, rename: never a half-written report. */
static enum mlk_status write_file(const char *path, const struct buf *b,
				  struct mlk_error *e)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		mlk_error_errno(e, path, "cannot write report");
		free(tmp);
		return MLK_SYSTEM;
	}
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = write(fd, b->data + off, b->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	int bad = off != b->len || fsync(fd) != 0;
	bad |= close(fd) != 0;
	if (bad || rename(tmp, path) != 0) {
		mlk_error_errno(e, path, "cannot write report");
		unlink(tmp);
		free(tmp);
		return MLK_SYSTEM;
	}
	free(tmp);
	return MLK_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fraction", required_argument, NULL, 'f' },
		{ "per-stratum", required_argument, NULL, 'n' },
		{ "min-per-stratum", required_argument, NULL, 'm' },
		{ "stratify", required_argument, NULL, 's' },
		{ "time-field", required_argument, NULL, 't' },
		{ "time-bins", required_argument, NULL, 'b' },
		{ "split", required_argument, NULL, 'S' },
		{ "unit", required_argument, NULL, 'u' },
		{ "seed", required_argument, NULL, 'z' },
		{ "lake", required_argument, NULL, 'L' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "report", required_argument, NULL, 'r' },
		{ "audit-fields", required_argument, NULL, 'a' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sample_params p;
	memset(&p, 0, sizeof p);
	const char *lakedir = NULL, *keyfile = NULL, *report = NULL;
	const char *purpose = NULL, *bins = NULL;
	struct mlk_error e = MLK_ERROR_INIT;
	int c;

	mlk_progname = "mlk-sample";
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'f': {
			char *end;
			errno = 0;
			p.fraction = strtod(optarg, &end);
			if (!*optarg || *end || errno || !(p.fraction >= 0) ||
			    p.fraction > 1) {
				mlk_warn("--fraction wants a number from 0 "
					 "to 1");
				usage(MLK_USAGE);
			}
			p.has_fraction = 1;
			break;
		}
		case 'n':
			p.per_stratum = parse_count("--per-stratum", optarg, 0);
			break;
		case 'm':
			p.min_per_stratum = parse_count("--min-per-stratum",
							optarg, 0);
			break;
		case 's':
			free_list(p.stratify, p.nstratify);
			p.stratify = split_list("--stratify", optarg,
						&p.nstratify);
			break;
		case 't': p.time_field = optarg; break;
		case 'b': bins = optarg; break;
		case 'S':
			for (size_t i = 0; i < p.nsplit; i++)
				free(p.split_name[i]);
			if (sample_split_parse(&p, optarg, &e) != MLK_OK) {
				mlk_warn("%s", e.msg);
				usage(MLK_USAGE);
			}
			break;
		case 'u':
			if (!*optarg) {
				mlk_warn("--unit wants a field name");
				usage(MLK_USAGE);
			}
			p.unit = optarg;
			break;
		case 'z': p.seed = parse_count("--seed", optarg, 1); break;
		case 'L': lakedir = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'r': report = optarg; break;
		case 'a':
			free_list(p.audit, p.naudit);
			p.audit = split_list("--audit-fields", optarg,
					     &p.naudit);
			break;
		case 'p': purpose = optarg; break;
		case 'h': usage(0); break;
		case 'V': puts("mlk-sample " MLK_VERSION); return 0;
		case ':':
			mlk_warn("option '%s' needs a value", argv[optind - 1]);
			usage(MLK_USAGE);
			break;
		default:
			mlk_warn("unknown option '%s'", argv[optind - 1]);
			usage(MLK_USAGE);
		}
	}
	if (argc - optind > 1) {
		mlk_warn("one input at most (a file, or - for stdin)");
		usage(MLK_USAGE);
	}
	if (!p.has_fraction && !p.per_stratum && !p.nsplit) {
		mlk_warn("nothing to do: give --fraction, --per-stratum or "
			 "--split");
		usage(MLK_USAGE);
	}
	if (p.per_stratum && p.has_fraction) {
		mlk_warn("--per-stratum and --fraction exclude each other "
			 "(--min-per-stratum goes with --fraction)");
		usage(MLK_USAGE);
	}
	if (p.min_per_stratum && !p.has_fraction) {
		mlk_warn("--min-per-stratum needs --fraction");
		usage(MLK_USAGE);
	}
	if (!!p.time_field != !!bins) {
		mlk_warn("--time-field and --time-bins go together");
		usage(MLK_USAGE);
	}
	if (bins && (p.time_bins = sample_bins_parse(bins)) == BINS_NONE) {
		mlk_warn("--time-bins wants month, quarter or year");
		usage(MLK_USAGE);
	}
	if (p.naudit && !report) {
		mlk_warn("--audit-fields needs --report");
		usage(MLK_USAGE);
	}
	const char *input = optind < argc ? argv[optind] : "-";
	signal(SIGPIPE, SIG_IGN);

	/* The key: --key-file, else the lake's default key. */
	struct lake lake;
	int have_lake = 0;
	uint8_t key[MLK_KEY_LEN];
	if (lake_key_load(lakedir, keyfile, &lake, &have_lake, key, &e) !=
	    MLK_OK) {
		mlk_error_print(mlk_progname, &e);
		crypto_wipe(key, sizeof key);
		if (have_lake)
			lake_close(&lake);
		return e.status;
	}
	crypto_key_id(key, p.key_id, sizeof p.key_id);
	struct sample *s = sample_new(&p, key, &e);
	crypto_wipe(key, sizeof key);
	if (!s) {
		mlk_error_print(mlk_progname, &e);
		if (have_lake)
			lake_close(&lake);
		return e.status;
	}

	int fd = 0;
	if (strcmp(input, "-")) {
		fd = open(input, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			mlk_error_errno(&e, input, "cannot open");
			mlk_error_print(mlk_progname, &e);
			sample_free(s);
			if (have_lake)
				lake_close(&lake);
			return MLK_SYSTEM;
		}
	}

	static char stdout_buf[1 << 20];
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);
	struct out o = { input, 1 };
	struct sample_sink sink = { &o, out_write, out_reject };
	int threads = have_lake ? (int)lake_conf_num(&lake, "sample",
						     "threads", 2) : 2;
	enum mlk_status st = sample_run(s, fd, threads, &sink, &e);
	if (fd > 0)
		close(fd);
	if (fflush(stdout) != 0 && o.ok) {
		mlk_warn("cannot write records to stdout: %s", strerror(errno));
		o.ok = 0;
	}
	if (st != MLK_OK && e.status != MLK_OK)
		mlk_error_print(mlk_progname, &e);
	if (!o.ok && st == MLK_OK)
		st = MLK_SYSTEM;

	const struct sample_counts *cn = sample_counts(s);
	int status = st;
	if (st == MLK_OK && (cn->no_unit || cn->rejected))
		status = MLK_PARTIAL;
	if (cn->no_unit)
		mlk_warn("%llu records without a unit (line %lld first) were "
			 "left out", cn->no_unit, cn->no_unit_line);

	char report_sha[SHA256_HEX] = "";
	if (report && st == MLK_OK) {
		struct buf rb = BUF_INIT;
		sample_report(s, &rb);
		sha256_hex_once(rb.data, rb.len, report_sha);
		struct mlk_error re = MLK_ERROR_INIT;
		if (write_file(report, &rb, &re) != MLK_OK) {
			mlk_error_print(mlk_progname, &re);
			status = MLK_SYSTEM;
			report_sha[0] = '\0';
		}
		buf_release(&rb);
	}

	if (have_lake) {
		/* One event per run; it names the input by hash and count,
		 * the report by hash, and never a value. */
		struct identity id;
		struct mlk_error ae = MLK_ERROR_INIT;
		if (policy_identity(&lake, &id, &ae) == MLK_OK) {
			struct buf in = BUF_INIT, outb = BUF_INIT, det = BUF_INIT;
			buf_addf(&in, "[{\"sha256\":\"%s\",\"records\":%llu}]",
				 cn->sha256, cn->in_records);
			buf_addf(&outb, "[{\"records\":%llu", cn->out_records);
			if (report_sha[0])
				buf_addf(&outb, ",\"report_sha256\":\"%s\"",
					 report_sha);
			buf_addstr(&outb, "}]");
			buf_addstr(&det, "{\"parameters\":");
			sample_params_json(&p, &det);
			buf_addf(&det, ",\"without_unit\":%llu,\"rejected\":"
				 "%llu", cn->no_unit, cn->rejected);
			if (p.naudit) {
				buf_addstr(&det, ",\"distances\":");
				sample_distances(s, &det);
			}
			buf_addch(&det, '}');
			struct audit_event ev = {
				"mlk-sample", "sample", purpose, NULL, NULL,
				NULL, in.data, outb.data, det.data, status,
			};
			if (audit_append(&lake, &id, &ev, &ae) != MLK_OK) {
				mlk_error_print(mlk_progname, &ae);
				if (status == MLK_OK || status == MLK_PARTIAL)
					status = ae.status;
			}
			buf_release(&in);
			buf_release(&outb);
			buf_release(&det);
			identity_release(&id);
		} else {
			mlk_error_print(mlk_progname, &ae);
			status = ae.status;
		}
		lake_close(&lake);
	}

	sample_free(s);
	free_list(p.stratify, p.nstratify);
	free_list(p.audit, p.naudit);
	for (size_t i = 0; i < p.nsplit; i++)
		free(p.split_name[i]);
	return status;
}
