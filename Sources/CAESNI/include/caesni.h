#ifndef CAESNI_H
#define CAESNI_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU executes AES-NI and SSE4.1 (cpuid leaf 1), else 0. The IGE functions below may
/// only be called when this returns 1; otherwise the caller takes its portable route.
int caesni_available(void);

/// AES-256-IGE as MTProto uses it: `iv` is 32 bytes, the first half standing for the previous
/// ciphertext block and the second for the previous plaintext block. `length` must be a multiple of
/// 16 (checked by the caller). `input` and `output` may be the same buffer (in-place), but must not
/// otherwise overlap. The key is expanded once per call.
void caesni_aes256_ige_encrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[32], const uint8_t iv[32]);
void caesni_aes256_ige_decrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[32], const uint8_t iv[32]);

/// AES-128-IGE: MTProto never uses it, but the published IGE test vectors (OpenSSL's igetest, Ben
/// Laurie's IGE paper) are AES-128, so this lets the tests check the IGE chaining of this file.
void caesni_aes128_ige_encrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[16], const uint8_t iv[32]);
void caesni_aes128_ige_decrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[16], const uint8_t iv[32]);

/// One AES-256 block in each direction with the same key schedule code; lets tests check the
/// key expansion against FIPS-197 directly.
void caesni_aes256_encrypt_block(const uint8_t key[32], const uint8_t input[16], uint8_t output[16]);
void caesni_aes256_decrypt_block(const uint8_t key[32], const uint8_t input[16], uint8_t output[16]);

#endif
