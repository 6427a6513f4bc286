/*
 * access — access requests and the grants they put in force.
 *
 * A request (mlk-catalog request) asks for an action on a zone and
 * dataset, with a purpose and optionally a project.  policy.yaml's
 * `requests` rules (mlk-policy(5)) decide it at once: granted with an
 * expiry, denied by a rule, or queued for an approver role, whose member
 * then approves or denies it.  Each request is one JSON object in
 * catalog/requests/<id>.json, replaced atomically when it is decided; a
 * granted request whose expiry has not passed is a grant in force, which
 * the policy engine honours after the policy's own grants.
 *
 * Request ids are "r-" and 16 hex digits.  Purposes and projects are the
 * requester's words, kept in the request file and the audit log; they
 * must not hold protected health information.
 *
 * Ownership: struct access_req is caller-owned (access_req_release);
 * access_list hands each request to a callback and keeps nothing.
 */
#ifndef MLK_ACCESS_H
#define MLK_ACCESS_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "lake.h"
#include "status.h"

#define ACCESS_ID_LEN 19     /* "r-" + 16 hex + NUL */

struct access_req {
	char id[ACCESS_ID_LEN];
	char *user, *action, *zone, *dataset, *purpose, *project;
	char *status;        /* "granted", "queued", "denied" */
	char *rule;          /* the rule that decided, or "" */
	char *approver;      /* the approver role when queued, or "" */
	char *decided_by;    /* who approved or denied, or "" */
	char created[32], decided[32], expires[32];   /* "" when none */
	long long days;      /* grant length once approved */
};

void access_req_release(struct access_req *r);
int access_id_valid(const char *id);
/* A new id from the request's content, the time and random bytes. */
enum mlk_status access_new_id(struct access_req *r, struct mlk_error *e);

enum mlk_status access_save(const struct lake *l, const struct access_req *r,
			    struct mlk_error *e);
/* MLK_USAGE when there is no such request. */
enum mlk_status access_load(const struct lake *l, const char *id,
			    struct access_req *r, struct mlk_error *e);
/* The request as one compact JSON object. */
void access_json(const struct access_req *r, struct buf *out);

/* Every request, in id order; a non-zero return from fn stops. */
typedef int (*access_fn)(void *ctx, const struct access_req *r);
enum mlk_status access_list(const struct lake *l, access_fn fn, void *ctx,
			    struct mlk_error *e);

/* 1 when r is granted and its expiry (ISO text) is after now. */
int access_in_force(const struct access_req *r, time_t now);

/*
 * Is a granted, unexpired request of user's in force for action on
 * zone/dataset?  1 with its id in id; 0 when none.
 */
int access_find_grant(const struct lake *l, const char *user,
		      const char *action, const char *zone,
		      const char *dataset, char id[ACCESS_ID_LEN]);

#endif
