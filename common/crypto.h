/*
 * crypto — hashing, keyed hashing and randomness through OpenSSL libcrypto.
 *
 * The main module that includes OpenSSL headers; three others still do, a
 * debt to pay by moving their calls here: merkle.c (SHA-256 without EVP,
 * whose per-call cost matters for short audit lines), treehead.c (Ed25519
 * signatures) and sample.c (a reusable keyed HMAC context).  SHA-256 runs
 * through EVP (which uses the CPU's SHA instructions).  Key material lives in
 * caller-owned buffers that the caller wipes with crypto_wipe() as soon as
 * it is no longer needed.  Key files are 32 raw random bytes in a file of
 * mode 0600; crypto_key_load() refuses one that group or others can read.
 */
#ifndef MLK_CRYPTO_H
#define MLK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SHA256_LEN 32
#define SHA256_HEX 65   /* 64 hex digits and a NUL */
#define MLK_KEY_LEN 32

struct sha256_ctx {
	void *md;  /* EVP_MD_CTX */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *p, size_t n);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);
/* Release without finishing (on error paths). */
void sha256_abort(struct sha256_ctx *c);
void sha256_once(const void *p, size_t n, uint8_t out[SHA256_LEN]);
void sha256_hex_once(const void *p, size_t n, char hex[SHA256_HEX]);

void hex_encode(const uint8_t *p, size_t n, char *out /* 2n+1 */);
/* 0 on success; -1 when not exactly 2n hex digits. */
int hex_decode(const char *hex, uint8_t *out, size_t n);

/* SHA-256 of a whole file, streamed; MLK_SYSTEM when unreadable. */
enum mlk_status sha256_file(const char *path, char hex[SHA256_HEX],
			    unsigned long long *size, struct mlk_error *e);

/* Cryptographically strong random bytes. */
enum mlk_status crypto_random(void *p, size_t n, struct mlk_error *e);

/* Create a new key file (O_EXCL, 0600); writes its id ("k-" + 16 hex of
 * the key's SHA-256) into id (at least 19 bytes). */
enum mlk_status crypto_key_create(const char *path, char *id, size_t idlen,
				  struct mlk_error *e);
/* Load a key file; refuses group/other-readable files and wrong sizes. */
enum mlk_status crypto_key_load(const char *path, uint8_t key[MLK_KEY_LEN],
				struct mlk_error *e);
void crypto_key_id(const uint8_t key[MLK_KEY_LEN], char *id, size_t idlen);

void crypto_wipe(void *p, size_t n);

/*
 * Keyed HMAC-SHA256 with a reusable context: hmac_init() sets the key up
 * once (the costly part); hmac_mac() then costs ~0.35 us for a short
 * message.  A context is not thread-safe: each thread takes its own copy
 * with hmac_dup().  hmac_release() frees (and so wipes) the key schedule.
 */
struct hmac {
	void *ctx;  /* EVP_MAC_CTX */
};

enum mlk_status hmac_init(struct hmac *h, const uint8_t *key, size_t n,
			  struct mlk_error *e);
void hmac_dup(struct hmac *dst, const struct hmac *src);
/* MAC of the concatenation of two parts (b may be NULL). */
void hmac_mac2(struct hmac *h, const void *a, size_t an, const void *b,
	       size_t bn, uint8_t out[SHA256_LEN]);
void hmac_release(struct hmac *h);

/*
 * AES-256-GCM with a 12-byte random nonce: sealed is nonce || ciphertext
 * || 16-byte tag (n + 28 bytes), bound to aad.  aead_open() returns
 * MLK_INTEGRITY when the tag does not verify (wrong key, altered bytes).
 */
#define AEAD_OVERHEAD 28
enum mlk_status aead_seal(const uint8_t key[MLK_KEY_LEN], const void *aad,
			  size_t aadn, const void *p, size_t n,
			  uint8_t *sealed, struct mlk_error *e);
enum mlk_status aead_open(const uint8_t key[MLK_KEY_LEN], const void *aad,
			  size_t aadn, const uint8_t *sealed, size_t n,
			  uint8_t *plain, struct mlk_error *e);

#endif
