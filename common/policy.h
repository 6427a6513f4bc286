/*
 * policy — who is asking, and whether policy.yaml lets them.
 *
 * Identity is the OS user and its groups.  policy.yaml (mlk-policy(5))
 * maps users and groups to roles and grants actions per zone (and
 * optionally per dataset glob) to roles.  Deny by default; the lake's
 * owner is always allowed.  A broken policy file denies everything (fail
 * closed) and says where it is broken.
 *
 * For tests only, MLK_TEST_USER and MLK_TEST_GROUPS (comma-separated)
 * replace the OS identity when policy.yaml sets test_identity_override:
 * true; otherwise they are ignored.
 *
 * Grants may carry conditions: the dataset's sensitivity (from its
 * catalog descriptor, "restricted" when it has none), the project, a
 * required purpose, an expiry, and `consent: required`: the purpose must
 * name a term of the descriptor's consent scope.  A denial where some
 * grant failed on consent alone names it ("grants[1]:consent").  After the policy's own grants, a
 * granted and unexpired access request (access.h) of the user's for the
 * same action, zone and dataset allows, by rule "request:<id>".
 * policy_request() decides a new request by the policy's `requests`
 * rules.
 *
 * Ownership: struct identity is caller-owned (policy_identity /
 * identity_release).
 */
#ifndef MLK_POLICY_H
#define MLK_POLICY_H

#include <stddef.h>
#include <sys/types.h>

#include "lake.h"
#include "status.h"
#include "yamltree.h"

struct identity {
	char user[256];
	long uid;
	char **groups;
	size_t ngroups;
	int test_override;
};

struct decision {
	int allow;
	char rule[128];     /* "owner", "grants[2]", "default-deny", ... */
	char role[128];     /* the role that granted, or "" */
};

enum mlk_status policy_identity(const struct lake *l, struct identity *id,
				struct mlk_error *e);
void identity_release(struct identity *id);

/*
 * Decide action (ingest, read, write, export, sandbox, rehydrate, approve,
 * admin) on zone/dataset (either may be NULL for lake-wide actions).
 * Returns MLK_OK with d filled whether allowed or not; an error only when
 * the policy cannot be read (then d denies, rule "policy-error").
 */
enum mlk_status policy_check(const struct lake *l, const struct identity *id,
			     const char *action, const char *zone,
			     const char *dataset, struct decision *d,
			     struct mlk_error *e);

/* What a decision may depend on besides who and what: NULL members (or
 * a NULL struct) are absent. */
struct policy_ctx {
	const char *purpose;
	const char *project;
};

/* policy_check with a purpose and project for grant conditions. */
enum mlk_status policy_check_ctx(const struct lake *l,
				 const struct identity *id,
				 const char *action, const char *zone,
				 const char *dataset,
				 const struct policy_ctx *ctx,
				 struct decision *d, struct mlk_error *e);

/* 1 when the user is a member of role (users or groups). */
int policy_in_role(const struct lake *l, const struct identity *id,
		   const char *role);

/*
 * Consent scope: 1 when purpose names (as a word of letters, digits, '-'
 * and '_', case-insensitively) a term of the dataset descriptor's
 * `consent` (a list, or terms separated by commas or blanks); 0 when it
 * does not, or there is no descriptor, scope or purpose.
 */
int policy_consent_allows(const struct lake *l, const char *dataset,
			  const char *purpose);

/* The sensitivity label of a dataset's descriptor; "restricted" when
 * there is none.  Caller frees. */
char *policy_sensitivity(const struct lake *l, const char *dataset);

enum policy_verdict { PV_DENY, PV_GRANT, PV_QUEUE };

struct request_decision {
	enum policy_verdict verdict;
	char rule[128];          /* "requests[1]" or "default-deny" */
	char approver[128];      /* PV_QUEUE: the role that decides */
	long long days;          /* how long a grant lasts */
};

/*
 * Decide a request for action on zone/dataset by the first rule of
 * policy.yaml's `requests` whose role holds the user and whose
 * conditions hold; none: denied by "default-deny".
 */
enum mlk_status policy_request(const struct lake *l,
			       const struct identity *id, const char *action,
			       const char *zone, const char *dataset,
			       const struct policy_ctx *ctx,
			       struct request_decision *rd,
			       struct mlk_error *e);

/* The identity of another user, by name: the user and the OS groups
 * the user belongs to (none when there is no such OS user). */
enum mlk_status policy_identity_of(const char *user, struct identity *id);

/* Each grant of the policy whose role holds id and that has not
 * expired, with its 0-based index; a non-zero return stops. */
typedef int (*policy_grant_fn)(void *ctx, size_t index,
			       const struct ynode *grant);
enum mlk_status policy_grants_of(const struct lake *l,
				 const struct identity *id,
				 policy_grant_fn fn, void *ctx,
				 struct mlk_error *e);

#endif
