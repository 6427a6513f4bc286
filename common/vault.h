/*
 * vault — the encrypted identity vault behind mlk-deid's encrypt method:
 * original values, sealed with AES-256-GCM under a per-project vault key,
 * found again by their token.
 *
 * Layout: vault/<project>/<run>.ndjson in the lake, one file per run that
 * encrypted anything, mode 0600 in a 0700 folder, each line
 * {"token":"<uuid>","sealed":"<hex of nonce|ciphertext|tag>"}; the
 * additional data of each seal is "<project>\0<token>", so a line moved to
 * another project or token does not open.  A run's file appears whole
 * (temp, fsync, rename) or not at all.
 *
 * Memory: the writer keeps the tokens it has written (one per distinct
 * encrypted value of the run) to write each once.
 *
 * Ownership: struct vault_writer is made by vault_open and ended by
 * vault_commit or vault_abort, which free it.  Keys are the caller's.
 */
#ifndef MLK_VAULT_H
#define MLK_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "lake.h"
#include "status.h"

struct vault_writer;

/* A project name is a safe folder name: [A-Za-z0-9._-], 1 to 64. */
int vault_project_valid(const char *project);

enum mlk_status vault_open(const struct lake *l, const char *project,
			   const uint8_t vkey[MLK_KEY_LEN],
			   struct vault_writer **w, struct mlk_error *e);
enum mlk_status vault_put(struct vault_writer *w, const char *token,
			  const char *value, size_t n, struct mlk_error *e);
/* Publish the run's file; *written says how many entries it holds. */
enum mlk_status vault_commit(struct vault_writer *w, size_t *written,
			     struct mlk_error *e);
void vault_abort(struct vault_writer *w);

/* The original value of token, appended to out; *found 0 when the vault
 * has none.  MLK_INTEGRITY when an entry does not open. */
enum mlk_status vault_lookup(const struct lake *l, const char *project,
			     const uint8_t vkey[MLK_KEY_LEN],
			     const char *token, struct buf *out, int *found,
			     struct mlk_error *e);

#endif
