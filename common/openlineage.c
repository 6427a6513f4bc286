#include "openlineage.h"

#include <string.h>

#include "crypto.h"
#include "record.h"
#include "banned.h"

void openlineage_namespace(const struct lake *l, struct buf *out)
{
	const struct ynode *lk = ynode_get(l->conf, "lake");
	const char *id = lk ? ynode_str(lk, "id") : NULL;
	buf_addstr(out, "mlk://");
	if (id && *id) {
		buf_addstr(out, id);
		return;
	}
	char hex[SHA256_HEX];
	sha256_hex_once(l->root, strlen(l->root), hex);
	hex[16] = '\0';
	buf_addf(out, "path-%s", hex);
}

/* The members that name a dataset, in the order they are looked for,
 * and the prefix of its name (the node names of mlk-audit trace). */
static const struct {
	const char *key, *prefix;
} names[] = {
	{ "batch", "batch:" },
	{ "snapshot", "snapshot:" },
	{ "sample", "sample:" },
	{ "model", "model:" },
	{ "dataset", "dataset:" },
	{ "sha256", "source:" },
	{ "report_sha256", "report:" },
};

/* One dataset {"namespace":...,"name":...} for item i, if it names one. */
static int add_dataset(const struct rec *r, int i, const char *ns,
		       int *count, struct buf *out)
{
	if (rec_type(r, i) != REC_OBJECT)
		return 0;
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		int t = rec_get(r, i, names[k].key);
		struct buf v = BUF_INIT;
		if (t < 0 || rec_str(r, t, &v) < 0 || !v.data) {
			buf_release(&v);
			continue;
		}
		buf_addstr(out, (*count)++ ? ",{\"namespace\":"
					   : "{\"namespace\":");
		buf_add_json_cstr(out, ns);
		buf_addstr(out, ",\"name\":");
		struct buf nm = BUF_INIT;
		buf_addstr(&nm, names[k].prefix);
		buf_add(&nm, v.data, v.len);
		buf_add_json_str(out, nm.data, nm.len);
		buf_addch(out, '}');
		buf_release(&nm);
		buf_release(&v);
		return 1;
	}
	return 0;
}

static int add_datasets(const struct rec *r, const char *member,
			const char *ns, const char *dataset, struct buf *out)
{
	int arr = rec_get(r, 0, member), count = 0;
	buf_addch(out, '[');
	if (arr >= 0 && rec_type(r, arr) == REC_ARRAY)
		for (int i = arr + 1; i < r->skip[arr]; i = r->skip[i])
			add_dataset(r, i, ns, &count, out);
	/* What an event made is part of its dataset: name that too. */
	if (dataset && count) {
		buf_addstr(out, ",{\"namespace\":");
		buf_add_json_cstr(out, ns);
		buf_addstr(out, ",\"name\":");
		struct buf nm = BUF_INIT;
		buf_addf(&nm, "dataset:%s", dataset);
		buf_add_json_str(out, nm.data, nm.len);
		buf_addch(out, '}');
		buf_release(&nm);
		count++;
	}
	buf_addch(out, ']');
	return count;
}

static void run_id(const char *line, size_t len, char out[37])
{
	uint8_t d[SHA256_LEN];
	sha256_once(line, len, d);
	d[6] = (uint8_t)(0x80 | (d[6] & 0x0f));   /* version 8 */
	d[8] = (uint8_t)(0x80 | (d[8] & 0x3f));   /* variant 10 */
	char hex[33];
	hex_encode(d, 16, hex);
	size_t o = 0;
	for (int i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = hex[i];
	}
	out[o] = '\0';
}

int openlineage_event(const char *ns, const char *line, size_t len,
		      struct buf *out)
{
	struct rec r;
	struct mlk_error pe = MLK_ERROR_INIT;
	rec_init(&r);
	int rc = -1;
	struct buf tool = BUF_INIT, action = BUF_INIT, time = BUF_INIT,
		   ds = BUF_INIT, body = BUF_INIT;
	if (rec_parse(&r, line, len, &pe) != MLK_OK)
		goto out;
	int t = rec_get(&r, 0, "tool"), a = rec_get(&r, 0, "action"),
	    tm = rec_get(&r, 0, "time"), st = rec_get(&r, 0, "status"),
	    dc = rec_get(&r, 0, "decision"), d = rec_get(&r, 0, "dataset");
	if (t < 0 || a < 0 || tm < 0 || rec_str(&r, t, &tool) < 0 ||
	    rec_str(&r, a, &action) < 0 || rec_str(&r, tm, &time) < 0 ||
	    !tool.data || !action.data || !time.data)
		goto out;
	rc = 0;
	if (dc >= 0 && rec_str_eq(&r, dc, "deny"))
		goto out;
	if (d >= 0)
		rec_str(&r, d, &ds);
	struct buf io = BUF_INIT;
	int n = 0;
	buf_addstr(&io, ",\"inputs\":");
	n += add_datasets(&r, "inputs", ns, NULL, &io);
	buf_addstr(&io, ",\"outputs\":");
	n += add_datasets(&r, "outputs", ns, ds.data, &io);
	if (n == 0) {
		buf_release(&io);
		goto out;
	}
	size_t sn = 0;
	const char *sv = st >= 0 ? rec_raw(&r, st, &sn) : "5";
	int ok = (sn == 1 && (sv[0] == '0' || sv[0] == '1'));
	char id[37];
	run_id(line, len, id);
	buf_addf(&body, "{\"eventType\":\"%s\",\"eventTime\":",
		 ok ? "COMPLETE" : "FAIL");
	buf_add_json_str(&body, time.data, time.len);
	buf_addf(&body, ",\"run\":{\"runId\":\"%s\"},\"job\":{\"namespace\":",
		 id);
	buf_add_json_cstr(&body, ns);
	buf_addstr(&body, ",\"name\":");
	buf_add(&tool, ".", 1);
	buf_add(&tool, action.data, action.len);
	buf_add_json_str(&body, tool.data, tool.len);
	buf_addch(&body, '}');
	buf_add(&body, io.data, io.len);
	buf_release(&io);
	buf_addstr(&body, ",\"producer\":\"" OPENLINEAGE_PRODUCER "\","
		   "\"schemaURL\":\"" OPENLINEAGE_SCHEMA_URL "\"}\n");
	buf_add(out, body.data, body.len);
	rc = 1;
out:
	buf_release(&tool);
	buf_release(&action);
	buf_release(&time);
	buf_release(&ds);
	buf_release(&body);
	rec_release(&r);
	return rc;
}
