#include "policy.h"

#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "access.h"
#include "fsio.h"
#include "xalloc.h"
#include "yamltree.h"
#include "banned.h"

void identity_release(struct identity *id)
{
	for (size_t i = 0; i < id->ngroups; i++)
		free(id->groups[i]);
	free(id->groups);
	id->groups = NULL;
	id->ngroups = 0;
}

static void add_group(struct identity *id, size_t *alloc, const char *g)
{
	for (size_t i = 0; i < id->ngroups; i++)
		if (!strcmp(id->groups[i], g))
			return;
	XGROW(id->groups, *alloc, id->ngroups + 1);
	id->groups[id->ngroups++] = xstrdup(g);
}

static enum mlk_status load_policy(const struct lake *l, struct ynode **out,
				   struct mlk_error *e)
{
	char *p = lake_path(l, "policy.yaml");
	enum mlk_status s = ynode_load_file(p, out, e);
	free(p);
	return s;
}

enum mlk_status policy_identity(const struct lake *l, struct identity *id,
				struct mlk_error *e)
{
	memset(id, 0, sizeof *id);
	size_t alloc = 0;
	uid_t uid = getuid();
	id->uid = (long)uid;
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(id->user, sizeof id->user, "%s", pw->pw_name);
	else
		snprintf(id->user, sizeof id->user, "%u", (unsigned)uid);
	struct group *gr = getgrgid(getgid());
	if (gr)
		add_group(id, &alloc, gr->gr_name);
	gid_t gs[256];
	int n = getgroups(256, gs);
	for (int i = 0; i < n; i++) {
		gr = getgrgid(gs[i]);
		if (gr)
			add_group(id, &alloc, gr->gr_name);
	}

	const char *tu = getenv("MLK_TEST_USER");
	if (!tu || !*tu || !l)
		return MLK_OK;
	struct ynode *pol = NULL;
	if (load_policy(l, &pol, e) != MLK_OK)
		return e->status;
	int allowed = ynode_bool(pol, "test_identity_override", 0) == 1;
	ynode_free(pol);
	if (!allowed)
		return MLK_OK;
	identity_release(id);
	alloc = 0;
	snprintf(id->user, sizeof id->user, "%s", tu);
	id->uid = -1;
	id->test_override = 1;
	const char *tg = getenv("MLK_TEST_GROUPS");
	if (tg && *tg) {
		char *copy = xstrdup(tg), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			add_group(id, &alloc, t);
		free(copy);
	}
	return MLK_OK;
}

/* Does a scalar or a list of scalars contain want (or "*")? */
static int list_has(const struct ynode *n, const char *want, int glob)
{
	if (!n)
		return 0;
	if (n->type == YNODE_SCALAR)
		return !strcmp(n->scalar, "*") ||
		       (glob ? !fnmatch(n->scalar, want, FNM_PATHNAME)
			     : !strcmp(n->scalar, want));
	if (n->type != YNODE_SEQ)
		return 0;
	for (size_t i = 0; i < n->n; i++)
		if (list_has(n->items[i], want, glob))
			return 1;
	return 0;
}

static int in_role(const struct ynode *roles, const char *role,
		   const struct identity *id)
{
	const struct ynode *r = roles ? ynode_get(roles, role) : NULL;
	if (!r)
		return 0;
	if (list_has(ynode_get(r, "users"), id->user, 0))
		return 1;
	const struct ynode *g = ynode_get(r, "groups");
	for (size_t i = 0; i < id->ngroups; i++)
		if (list_has(g, id->groups[i], 0))
			return 1;
	return 0;
}

char *policy_sensitivity(const struct lake *l, const char *dataset)
{
	char *p = lake_path(l, "catalog/datasets/%s.yaml", dataset);
	struct ynode *d = NULL;
	struct mlk_error e = MLK_ERROR_INIT;
	char *r = NULL;
	if (fsio_exists(p) && ynode_load_file(p, &d, &e) == MLK_OK) {
		const char *v = ynode_str(d, "sensitivity");
		if (v && *v)
			r = xstrdup(v);
	}
	ynode_free(d);
	free(p);
	/* No descriptor, or no label: treated as the most sensitive. */
	return r ? r : xstrdup("restricted");
}

/* Is word (n bytes) a term of the scope, case-insensitively? */
static int scope_has(const struct ynode *scope, const char *word, size_t n)
{
	if (!scope)
		return 0;
	if (scope->type == YNODE_SEQ) {
		for (size_t i = 0; i < scope->n; i++)
			if (scope_has(scope->items[i], word, n))
				return 1;
		return 0;
	}
	if (scope->type != YNODE_SCALAR || ynode_is_null(scope))
		return 0;
	/* A scalar scope lists its terms separated by commas or blanks. */
	const char *p = scope->scalar;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		const char *t = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - t) == n && !strncasecmp(t, word, n))
			return 1;
	}
	return 0;
}

static int purpose_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int policy_consent_allows(const struct lake *l, const char *dataset,
			  const char *purpose)
{
	if (!dataset || !purpose || !*purpose)
		return 0;
	char *p = lake_path(l, "catalog/datasets/%s.yaml", dataset);
	struct ynode *d = NULL;
	struct mlk_error e = MLK_ERROR_INIT;
	int ok = 0;
	if (fsio_exists(p) && ynode_load_file(p, &d, &e) == MLK_OK) {
		const struct ynode *scope = ynode_get(d, "consent");
		for (const char *w = purpose; *w && !ok;) {
			while (*w && !purpose_char(*w))
				w++;
			const char *t = w;
			while (purpose_char(*w))
				w++;
			if (w > t)
				ok = scope_has(scope, t, (size_t)(w - t));
		}
	}
	ynode_free(d);
	free(p);
	return ok;
}

/*
 * The conditions a grant or request rule may carry beyond role, action,
 * zone and dataset.  Fails closed: a condition that cannot be checked
 * does not hold.  *consent_only is set when every condition but the
 * consent scope held.
 */
static int conditions_hold(const struct lake *l, const struct ynode *g,
			   const char *dataset, const struct policy_ctx *ctx,
			   int *consent_only)
{
	*consent_only = 0;
	const struct ynode *sens = ynode_get(g, "sensitivity");
	if (sens) {
		if (!dataset)
			return 0;
		char *label = policy_sensitivity(l, dataset);
		int ok = list_has(sens, label, 0);
		free(label);
		if (!ok)
			return 0;
	}
	const struct ynode *proj = ynode_get(g, "projects");
	if (proj && !(ctx && ctx->project && *ctx->project &&
		      list_has(proj, ctx->project, 0)))
		return 0;
	if (ynode_bool(g, "purpose_required", 0) != 0 &&
	    !(ctx && ctx->purpose && *ctx->purpose))
		return 0;
	const char *exp = ynode_str(g, "expires");
	if (exp) {
		char now[32];
		lake_time_iso(lake_now(l), now);
		/* ISO 8601 UTC text compares in time order; a date alone
		 * ends at the start of that day. */
		if (strcmp(now, exp) >= 0)
			return 0;
	}
	const char *consent = ynode_str(g, "consent");
	if (consent && strcmp(consent, "any") &&
	    !policy_consent_allows(l, dataset,
				   ctx ? ctx->purpose : NULL)) {
		*consent_only = 1;
		return 0;
	}
	return 1;
}

int policy_in_role(const struct lake *l, const struct identity *id,
		   const char *role)
{
	struct ynode *pol = NULL;
	struct mlk_error e = MLK_ERROR_INIT;
	if (load_policy(l, &pol, &e) != MLK_OK)
		return 0;
	int r = in_role(ynode_get(pol, "roles"), role, id);
	ynode_free(pol);
	return r;
}

enum mlk_status policy_check(const struct lake *l, const struct identity *id,
			     const char *action, const char *zone,
			     const char *dataset, struct decision *d,
			     struct mlk_error *e)
{
	return policy_check_ctx(l, id, action, zone, dataset, NULL, d, e);
}

enum mlk_status policy_check_ctx(const struct lake *l,
				 const struct identity *id,
				 const char *action, const char *zone,
				 const char *dataset,
				 const struct policy_ctx *ctx,
				 struct decision *d, struct mlk_error *e)
{
	memset(d, 0, sizeof *d);
	struct ynode *pol = NULL;
	if (load_policy(l, &pol, e) != MLK_OK) {
		snprintf(d->rule, sizeof d->rule, "policy-error");
		return e->status;
	}
	const char *owner = ynode_str(pol, "owner");
	/* Re-identification needs a grant of its own: owning the lake is
	 * not enough (separation of duties). */
	if (owner && !strcmp(owner, id->user) && strcmp(action, "rehydrate")) {
		d->allow = 1;
		snprintf(d->rule, sizeof d->rule, "owner");
		ynode_free(pol);
		return MLK_OK;
	}
	const struct ynode *roles = ynode_get(pol, "roles");
	const struct ynode *grants = ynode_get(pol, "grants");
	long consent_rule = -1;
	int consent_only;
	if (grants && grants->type == YNODE_SEQ) {
		for (size_t i = 0; i < grants->n; i++) {
			const struct ynode *g = grants->items[i];
			const char *role = ynode_str(g, "role");
			if (!role || !in_role(roles, role, id))
				continue;
			if (!list_has(ynode_get(g, "actions"), action, 0))
				continue;
			if (zone && !list_has(ynode_get(g, "zones"), zone, 0))
				continue;
			const struct ynode *ds = ynode_get(g, "datasets");
			if (dataset && ds && !list_has(ds, dataset, 1))
				continue;
			if (!conditions_hold(l, g, dataset, ctx,
					     &consent_only)) {
				if (consent_only && consent_rule < 0)
					consent_rule = (long)i;
				continue;
			}
			d->allow = 1;
			snprintf(d->rule, sizeof d->rule, "grants[%zu]", i);
			snprintf(d->role, sizeof d->role, "%s", role);
			ynode_free(pol);
			return MLK_OK;
		}
	}
	ynode_free(pol);
	char rid[ACCESS_ID_LEN];
	if (dataset && access_find_grant(l, id->user, action, zone, dataset,
					 rid)) {
		d->allow = 1;
		snprintf(d->rule, sizeof d->rule, "request:%s", rid);
		return MLK_OK;
	}
	/* A grant that failed on consent alone is the rule that denied. */
	if (consent_rule >= 0)
		snprintf(d->rule, sizeof d->rule, "grants[%ld]:consent",
			 consent_rule);
	else
		snprintf(d->rule, sizeof d->rule, "default-deny");
	return MLK_OK;
}

enum mlk_status policy_request(const struct lake *l,
			       const struct identity *id, const char *action,
			       const char *zone, const char *dataset,
			       const struct policy_ctx *ctx,
			       struct request_decision *rd,
			       struct mlk_error *e)
{
	memset(rd, 0, sizeof *rd);
	rd->verdict = PV_DENY;
	snprintf(rd->rule, sizeof rd->rule, "default-deny");
	struct ynode *pol = NULL;
	if (load_policy(l, &pol, e) != MLK_OK) {
		snprintf(rd->rule, sizeof rd->rule, "policy-error");
		return e->status;
	}
	const struct ynode *roles = ynode_get(pol, "roles");
	const struct ynode *rules = ynode_get(pol, "requests");
	enum mlk_status s = MLK_OK;
	for (size_t i = 0; rules && rules->type == YNODE_SEQ &&
			   i < rules->n; i++) {
		const struct ynode *g = rules->items[i];
		const char *role = ynode_str(g, "role");
		if (!role || !in_role(roles, role, id))
			continue;
		const struct ynode *acts = ynode_get(g, "actions");
		if (acts ? !list_has(acts, action, 0) : strcmp(action, "read"))
			continue;
		const struct ynode *zs = ynode_get(g, "zones");
		if (zs && !list_has(zs, zone, 0))
			continue;
		const struct ynode *ds = ynode_get(g, "datasets");
		if (ds && !list_has(ds, dataset, 1))
			continue;
		int consent_only;
		if (!conditions_hold(l, g, dataset, ctx, &consent_only)) {
			if (consent_only && !strcmp(rd->rule, "default-deny"))
				snprintf(rd->rule, sizeof rd->rule,
					 "requests[%zu]:consent", i);
			continue;
		}
		const char *dec = ynode_str(g, "decide");
		snprintf(rd->rule, sizeof rd->rule, "requests[%zu]", i);
		const char *days = ynode_str(g, "days");
		rd->days = days ? strtoll(days, NULL, 10) : 30;
		if (rd->days <= 0 || rd->days > 3660)
			rd->days = 30;
		if (dec && !strcmp(dec, "grant")) {
			rd->verdict = PV_GRANT;
		} else if (dec && !strcmp(dec, "queue")) {
			const char *ap = ynode_str(g, "approver");
			if (!ap || !*ap) {
				s = mlk_error_set(e, MLK_DENIED, "policy.yaml",
						  (long long)g->line,
						  "a queue rule needs an "
						  "approver role");
				rd->verdict = PV_DENY;
				break;
			}
			rd->verdict = PV_QUEUE;
			snprintf(rd->approver, sizeof rd->approver, "%s", ap);
		} else if (dec && !strcmp(dec, "deny")) {
			rd->verdict = PV_DENY;
		} else {
			s = mlk_error_set(e, MLK_DENIED, "policy.yaml",
					  (long long)g->line,
					  "decide must be grant, queue or "
					  "deny");
			rd->verdict = PV_DENY;
		}
		break;
	}
	ynode_free(pol);
	return s;
}

enum mlk_status policy_identity_of(const char *user, struct identity *id)
{
	memset(id, 0, sizeof *id);
	size_t alloc = 0;
	snprintf(id->user, sizeof id->user, "%s", user);
	id->uid = -1;
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return MLK_OK;
	id->uid = (long)pw->pw_uid;
	gid_t gs[256];
	int n = 256;
	if (getgrouplist(user, pw->pw_gid, gs, &n) < 0)
		n = 0;
	for (int i = 0; i < n; i++) {
		struct group *gr = getgrgid(gs[i]);
		if (gr)
			add_group(id, &alloc, gr->gr_name);
	}
	return MLK_OK;
}

enum mlk_status policy_grants_of(const struct lake *l,
				 const struct identity *id,
				 policy_grant_fn fn, void *ctx,
				 struct mlk_error *e)
{
	struct ynode *pol = NULL;
	if (load_policy(l, &pol, e) != MLK_OK)
		return e->status;
	const struct ynode *roles = ynode_get(pol, "roles");
	const struct ynode *grants = ynode_get(pol, "grants");
	char now[32];
	lake_time_iso(lake_now(l), now);
	for (size_t i = 0; grants && grants->type == YNODE_SEQ &&
			   i < grants->n; i++) {
		const struct ynode *g = grants->items[i];
		const char *role = ynode_str(g, "role");
		if (!role || !in_role(roles, role, id))
			continue;
		const char *exp = ynode_str(g, "expires");
		if (exp && strcmp(now, exp) >= 0)
			continue;
		if (fn(ctx, i, g))
			break;
	}
	ynode_free(pol);
	return MLK_OK;
}
