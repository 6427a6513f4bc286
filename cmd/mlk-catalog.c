/*
 * mlk-catalog — the lake's front door.  So far: init, which creates a lake.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "lake.h"
#include "policy.h"
#include "status.h"
#include "banned.h"

static const char usage_text[] =
"usage: mlk-catalog init DIR\n"
"\n"
"Create a lake in DIR: mlk.yaml, policy.yaml (owned by you), vocab.yaml,\n"
"the zone folders, and keys/ with a fresh 256-bit pseudonym key (0600).\n"
"\n"
"  --help, --version\n"
"\n"
"Exit status: 0 ok, 2 usage, 5 system error.  See mlk-catalog(1).\n";

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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
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
	if (!strcmp(cmd, "init"))
		return cmd_init(argc - optind, argv + optind);
	mlk_warn("unknown command '%s'", cmd);
	usage(MLK_USAGE);
	return MLK_USAGE;
}
