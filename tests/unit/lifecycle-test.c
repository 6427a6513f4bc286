/*
 * lifecycle-test — unit checks for common/lifecycle.c: sandbox durations
 * (units, bounds, malformed text), UTC time stamps parsed back as written,
 * and which holds cover a snapshot or a dataset (a dataset hold covers
 * every snapshot of it, a snapshot hold only its own, and both count for
 * the dataset in any zone).
 */
#include <stdio.h>
#include <string.h>

#include "lake.h"
#include "lifecycle.h"
#include "tap.h"
#include "banned.h"

static void duration_checks(void)
{
	check(lc_duration("72h") == 72 * 3600, "72h");
	check(lc_duration("30d") == 30 * 86400, "30d");
	check(lc_duration("90m") == 90 * 60, "90m");
	check(lc_duration("600s") == 600, "600s");
	check(lc_duration("3660d") == 3660LL * 86400, "3660d is the most");
	check(lc_duration("3661d") == -1, "3661d is too long");
	check(lc_duration("0h") == -1, "0h is refused");
	check(lc_duration("h") == -1, "no number");
	check(lc_duration("5") == -1, "no unit");
	check(lc_duration("5w") == -1, "unknown unit");
	check(lc_duration("-5h") == -1, "negative");
	check(lc_duration("5h ") == -1, "trailing blank");
	check(lc_duration(NULL) == -1, "NULL");
}

static void time_checks(void)
{
	check(lc_time_parse("1970-01-01T00:00:00Z") == 0, "the epoch");
	check(lc_time_parse("2026-11-25T21:23:52Z") == 1795641832,
	      "a time stamp");
	char out[32];
	lake_time_iso(1795641832, out);
	check(!strcmp(out, "2026-11-25T21:23:52Z"), "round trip");
	check(lc_time_parse("2026-11-25") == 0, "a date alone is no stamp");
	check(lc_time_parse("2026-11-25T21:23:52+01:00") == 0,
	      "only UTC");
	check(lc_time_parse(NULL) == 0, "NULL");
}

static void hold_checks(void)
{
	struct lc_hold h[3] = {
		{ "s111111111111111111111111", "training", "demo", "A", "u",
		  "t" },
		{ "training/demo", "training", "demo", "B", "u", "t" },
		{ "curated/other", "curated", "other", "C", "u", "t" },
	};
	const char *a = "s111111111111111111111111";
	const char *b = "s222222222222222222222222";
	check(lc_held(h, 3, a, "training", "demo") == 2,
	      "snapshot and dataset holds cover the held snapshot");
	check(lc_held(h, 3, b, "training", "demo") == 1,
	      "only the dataset hold covers a sibling snapshot");
	check(lc_held(h, 1, b, "training", "demo") == 0,
	      "a snapshot hold does not cover its sibling");
	check(lc_held(h, 3, a, "curated", "demo") == 0,
	      "holds are per zone");
	check(lc_held(h, 3, NULL, NULL, "demo") == 2,
	      "both count for the dataset in any zone");
	check(lc_held(h, 3, NULL, NULL, "other") == 1, "another dataset");
	check(lc_held(h, 0, NULL, NULL, "demo") == 0, "no holds");
}

int main(void)
{
	(void)mem_read;   /* tap.h's reader: not needed here */
	duration_checks();
	time_checks();
	hold_checks();
	return tap_done();
}
