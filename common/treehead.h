/*
 * treehead — signed tree heads (checkpoints) of the audit log, and the
 * Ed25519 key that signs them (through crypto's Ed25519 calls).
 *
 * A tree head says: the first tree_size events of the log have the RFC
 * 6962 Merkle tree hash root_hash, at time, signed by key_id.  The signed
 * bytes are fixed text, so any Ed25519 implementation can check them:
 *
 *     "mlk-audit tree head v1\n" SIZE "\n" ROOT_HEX "\n" TIME "\n" KEY_ID "\n"
 *
 * The private key is keys/audit-ed25519.pem (PKCS#8 PEM, mode 0600, made
 * on first use with O_EXCL); its public half is copied to
 * audit/checkpoint-key.pub (SubjectPublicKeyInfo PEM) for auditors.  A key
 * id is "ed25519:" and the first 16 hex digits of the SHA-256 of the raw
 * 32-byte public key.
 *
 * Checkpoints are appended, one tree head per line, to
 * audit/checkpoints.ndjson (format in mlk-audit(5)).
 *
 * Ownership: struct th_key is caller-owned (th_key_release frees the
 * key); struct tree_head is plain data.
 */
#ifndef MLK_TREEHEAD_H
#define MLK_TREEHEAD_H

#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "lake.h"
#include "merkle.h"
#include "record.h"
#include "status.h"

#define TH_KEY_ID 26   /* "ed25519:" + 16 hex + NUL */
#define TH_SIG 64

struct th_key {
	struct crypto_ed25519 *pkey;
	int priv;                 /* holds the private key */
	char id[TH_KEY_ID];
};

struct tree_head {
	uint64_t size;
	uint8_t root[MERKLE_HASH];
	char time[32];
	char key_id[TH_KEY_ID];
	uint8_t sig[TH_SIG];
};

/* The lake's signing key: load it, or make it (and the .pub copy). */
enum mlk_status th_key_lake(const struct lake *l, struct th_key *k,
			    struct mlk_error *e);
/* A public key from a PEM file (SubjectPublicKeyInfo). */
enum mlk_status th_key_load_pub(const char *path, struct th_key *k,
				struct mlk_error *e);
void th_key_release(struct th_key *k);

/* Sign h (sets h->key_id and h->sig). */
enum mlk_status th_sign(const struct th_key *k, struct tree_head *h,
			struct mlk_error *e);
/* 1 when h carries k's id and a good signature. */
int th_verify(const struct th_key *k, const struct tree_head *h);

/* One JSON line, without '\n'. */
void th_format(const struct tree_head *h, struct buf *out);
/* Parse a tree head object (a checkpoint line or a saved head file). */
enum mlk_status th_parse(const char *text, size_t len, struct tree_head *h,
			 const char *file, long long line,
			 struct mlk_error *e);

#endif
