/* rm_vault: the master key, and AES-256-GCM encryption of stored secret
 * values (Secret.ciphertext in the data model).
 *
 * The master key is 32 random bytes. It comes from RESTMON_MASTER_KEY when
 * that is set (base64 of 32 bytes, as `openssl rand -base64 32` prints, or
 * 64 hex digits, as `openssl rand -hex 32` prints), otherwise from a key
 * file holding the base64 key and a newline; a missing key file is created
 * with a fresh key. A key is named by its key id: the first 8 hex digits of
 * the SHA-256 of the key. The key id is not secret.
 *
 * A ciphertext is the text "rmv1:<key id>:<base64 nonce>:<base64 data>"
 * where data is the AES-256-GCM ciphertext followed by its 16-byte tag, the
 * nonce is 12 fresh random bytes per encryption, and the additional
 * authenticated data is the secret's name: a ciphertext copied onto another
 * secret does not decrypt. Base64 is the standard alphabet with padding.
 *
 * Nothing here logs, and no error message holds a key or a secret value.
 *
 * Key rotation (`restmon rotate-key`), crash-safe at every point:
 *
 *   rm_vault *v;
 *   rm_vault_rotate_begin(&v, key_file, err, sizeof err);
 *       -- key_file.new now holds the new key (written to a temporary file,
 *          fsynced, linked into place; an existing key_file.new left by an
 *          unfinished rotation is reused, never replaced). v encrypts with
 *          the new key and decrypts with the new or the old one.
 *   BEGIN; for each stored secret:
 *       rm_vault_decrypt(v, ct, name, ...); rm_vault_encrypt(v, ..., name, &ct2);
 *       UPDATE secret SET ciphertext = ct2;
 *   COMMIT;
 *   rm_vault_rotate_commit(v, err, sizeof err);
 *       -- writes the old key to key_file.old-<old key id> (mode 0600,
 *          fsynced), renames key_file.new over key_file, fsyncs the folder.
 *   rm_vault_close(v);
 *
 * If the process dies anywhere in between, key_file (old key) and
 * key_file.new (new key) both exist, and rm_vault_open loads the second as
 * a decrypt-only key, so every stored ciphertext -- old key or new, whether
 * or not the transaction committed -- still decrypts; running
 * `restmon rotate-key` again finishes the job with the same new key. This
 * is why there is no "abort" that deletes key_file.new: after a lost
 * connection during COMMIT the caller cannot know whether ciphertexts under
 * the new key were stored. rm_vault_other_key_id tells `restmon serve` that
 * a rotation is unfinished, so it can say so at start. After the commit the
 * old key stays in key_file.old-<id> for restoring older backups; delete
 * it once those are gone.
 *
 * Rotate while no other process writes secrets with this key file (stop
 * `restmon serve`, start it again afterwards): a process that opened the
 * vault before the rotation keeps encrypting with the old key and cannot
 * read what the rotation re-encrypted. Two rotations at once are safe:
 * they share key_file.new. */
#ifndef RM_SECRET_VAULT_H
#define RM_SECRET_VAULT_H

#include <stddef.h>

#define RM_VAULT_KEY_ENV "RESTMON_MASTER_KEY"
/* Largest plaintext rm_vault_encrypt takes (RM_ETOOBIG beyond). */
#define RM_VAULT_MAX_PLAIN ((size_t)16 * 1024 * 1024)

typedef struct rm_vault rm_vault;

/* Opens the vault with the master key from RESTMON_MASTER_KEY when that is
 * set (key_file is then not touched), else from key_file, creating it and
 * its folders (mode 0700) with a new random key when it does not exist.
 * A key file must be a regular file that neither group nor others may
 * access, or it is refused. *out is the vault (caller closes with
 * rm_vault_close). Returns 0, or RM_EINVAL (bad RESTMON_MASTER_KEY, or a
 * key file that is not a regular file),
 * RM_EPARSE (malformed key file), RM_EDENIED (key file permissions),
 * RM_EIO, RM_ENOMEM, with err naming the variable or the file. */
int rm_vault_open(rm_vault **out, const char *key_file, char *err, size_t errlen);

/* Zeroes the keys and frees the vault. NULL is fine. */
void rm_vault_close(rm_vault *v);

/* Id of the key that encrypts (8 hex digits). Borrowed until close. */
const char *rm_vault_key_id(const rm_vault *v);
/* Id of the second key the vault decrypts with, or NULL: after
 * rm_vault_open, the new key of an unfinished rotation (key_file.new);
 * after rm_vault_rotate_begin, the old key. Borrowed until close. */
const char *rm_vault_other_key_id(const rm_vault *v);

/* Encrypts plain[0..len) (any bytes; len may be 0) for the secret whose
 * name is aad (NUL-terminated, compared byte for byte on decryption, so
 * pass the name in its stored form). *out is the ciphertext text (caller
 * frees; it holds nothing secret). Returns 0, RM_EINVAL (NULL aad),
 * RM_ETOOBIG (len > RM_VAULT_MAX_PLAIN), RM_EIO (no randomness or a
 * cipher failure) or RM_ENOMEM. */
int rm_vault_encrypt(const rm_vault *v, const void *plain, size_t len, const char *aad,
                     char **out);

/* Decrypts text made by rm_vault_encrypt with the same aad. *plain gets
 * the value plus a terminating NUL (not counted in *len); the caller
 * releases it with rm_vault_free_plain. Returns 0, or:
 *   RM_EPARSE    text is not "rmv1:<key id>:<nonce>:<data>"
 *   RM_EVERSION  a format version this binary does not know
 *   RM_ENOTFOUND made by a key this vault does not hold ("encrypted with
 *                key X, the vault has key Y")
 *   RM_EDENIED   authentication failed: wrong key, wrong secret name, or
 *                the text was altered
 *   RM_ENOMEM, RM_EIO
 * with err saying which; err never holds the text, the key or the value. */
int rm_vault_decrypt(const rm_vault *v, const char *text, const char *aad, char **plain,
                     size_t *len, char *err, size_t errlen);

/* Zeroes and frees a plaintext from rm_vault_decrypt. NULL is fine. */
void rm_vault_free_plain(char *plain, size_t len);

/* Starts a rotation of the key in key_file (see the top of this file).
 * *out encrypts with the new key and decrypts with both (caller closes).
 * Refused with RM_EINVAL while RESTMON_MASTER_KEY is set: that key lives
 * outside RestMon. Other errors as rm_vault_open, plus RM_ENOTFOUND when
 * key_file does not exist. */
int rm_vault_rotate_begin(rm_vault **out, const char *key_file, char *err, size_t errlen);

/* Makes the new key of a vault from rm_vault_rotate_begin the one in its
 * key file, keeping the old one as key_file.old-<old key id>. Call it only
 * after every ciphertext under the old key has been replaced and that
 * change is durable. Idempotent: a commit that already happened (this or
 * another process) returns 0. Returns RM_EINVAL for a vault that is not
 * rotating, RM_ECONFLICT when the key files changed under it, RM_EIO. The
 * vault stays usable. */
int rm_vault_rotate_commit(rm_vault *v, char *err, size_t errlen);

#endif
