#include "caesni.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <string.h>
#include <wmmintrin.h>
#include <smmintrin.h>

// Only the functions that execute AES-NI are compiled for it (per-function target attribute
// rather than a target-wide -maes), so the rest of this file, the cpuid check included, runs on
// any x86-64 CPU, and the package needs no unsafe compiler flags.
#define AESNI __attribute__((target("aes,sse4.1")))

int caesni_available(void) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        return 0;
    }
    const unsigned int aes = 1u << 25;
    const unsigned int sse41 = 1u << 19;
    return (ecx & aes) && (ecx & sse41) ? 1 : 0;
}

// AES-256 key expansion (FIPS-197 5.2) with aeskeygenassist: even round keys take RotWord+SubWord
// with the round constant (lane 3), odd ones take SubWord only (lane 2).
AESNI static inline __m128i expand_even(__m128i previous, __m128i assist) {
    assist = _mm_shuffle_epi32(assist, 0xff);
    previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
    previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
    previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
    return _mm_xor_si128(previous, assist);
}

AESNI static inline __m128i expand_odd(__m128i previous, __m128i assist) {
    assist = _mm_shuffle_epi32(assist, 0xaa);
    previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
    previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
    previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
    return _mm_xor_si128(previous, assist);
}

// The round constant must be an immediate, hence a macro rather than a loop.
#define EXPAND_PAIR(k, i, rcon)                                                        \
    k[i] = expand_even(k[i - 2], _mm_aeskeygenassist_si128(k[i - 1], rcon));           \
    k[i + 1] = expand_odd(k[i - 1], _mm_aeskeygenassist_si128(k[i], 0x00));

AESNI static inline void expand_encrypt_key(const uint8_t key[32], __m128i k[15]) {
    k[0] = _mm_loadu_si128((const __m128i *)key);
    k[1] = _mm_loadu_si128((const __m128i *)(key + 16));
    EXPAND_PAIR(k, 2, 0x01)
    EXPAND_PAIR(k, 4, 0x02)
    EXPAND_PAIR(k, 6, 0x04)
    EXPAND_PAIR(k, 8, 0x08)
    EXPAND_PAIR(k, 10, 0x10)
    EXPAND_PAIR(k, 12, 0x20)
    k[14] = expand_even(k[12], _mm_aeskeygenassist_si128(k[13], 0x40));
}

// The equivalent inverse cipher (FIPS-197 5.3.5): reversed round keys, InvMixColumns applied to the
// inner ones, so aesdec can walk them in order.
AESNI static inline void expand_decrypt_key(const uint8_t key[32], __m128i d[15]) {
    __m128i k[15];
    expand_encrypt_key(key, k);
    d[0] = k[14];
    for (int i = 1; i < 14; i++) {
        d[i] = _mm_aesimc_si128(k[14 - i]);
    }
    d[14] = k[0];
    memset(k, 0, sizeof(k));
}

AESNI static inline __m128i encrypt_block(__m128i block, const __m128i k[15]) {
    block = _mm_xor_si128(block, k[0]);
    block = _mm_aesenc_si128(block, k[1]);
    block = _mm_aesenc_si128(block, k[2]);
    block = _mm_aesenc_si128(block, k[3]);
    block = _mm_aesenc_si128(block, k[4]);
    block = _mm_aesenc_si128(block, k[5]);
    block = _mm_aesenc_si128(block, k[6]);
    block = _mm_aesenc_si128(block, k[7]);
    block = _mm_aesenc_si128(block, k[8]);
    block = _mm_aesenc_si128(block, k[9]);
    block = _mm_aesenc_si128(block, k[10]);
    block = _mm_aesenc_si128(block, k[11]);
    block = _mm_aesenc_si128(block, k[12]);
    block = _mm_aesenc_si128(block, k[13]);
    return _mm_aesenclast_si128(block, k[14]);
}

AESNI static inline __m128i decrypt_block(__m128i block, const __m128i d[15]) {
    block = _mm_xor_si128(block, d[0]);
    block = _mm_aesdec_si128(block, d[1]);
    block = _mm_aesdec_si128(block, d[2]);
    block = _mm_aesdec_si128(block, d[3]);
    block = _mm_aesdec_si128(block, d[4]);
    block = _mm_aesdec_si128(block, d[5]);
    block = _mm_aesdec_si128(block, d[6]);
    block = _mm_aesdec_si128(block, d[7]);
    block = _mm_aesdec_si128(block, d[8]);
    block = _mm_aesdec_si128(block, d[9]);
    block = _mm_aesdec_si128(block, d[10]);
    block = _mm_aesdec_si128(block, d[11]);
    block = _mm_aesdec_si128(block, d[12]);
    block = _mm_aesdec_si128(block, d[13]);
    return _mm_aesdeclast_si128(block, d[14]);
}

// IGE is serial in both directions: block i+1's input needs block i's output. The final AES round
// ends with a plain XOR of the round key, so the IGE XORs around it fold into that key:
// aesenclast(t, k14 ^ a ^ b) == aesenclast(t, k14) ^ a ^ b. The loop below feeds each block's last
// round straight into the next block's first-round input, leaving only the 14 AES instructions on
// the dependency chain; the output block is recovered off the chain.
AESNI void caesni_aes256_ige_encrypt(const uint8_t *input, uint8_t *output, size_t length,
                                     const uint8_t key[32], const uint8_t iv[32]) {
    if (length < 16) {
        return;
    }
    __m128i k[15];
    expand_encrypt_key(key, k);
    const __m128i zero = _mm_setzero_si128();
    __m128i previous_plain = _mm_loadu_si128((const __m128i *)(iv + 16));
    __m128i plain = _mm_loadu_si128((const __m128i *)input);
    // state = plain_i ^ cipher_{i-1} ^ k0: the input of round 1.
    __m128i state = _mm_xor_si128(_mm_xor_si128(plain, _mm_loadu_si128((const __m128i *)iv)), k[0]);
    for (size_t offset = 0; offset < length; offset += 16) {
        // Loaded before this block's store, so input == output works.
        const __m128i next_plain =
            offset + 16 < length ? _mm_loadu_si128((const __m128i *)(input + offset + 16)) : zero;
        const __m128i last_key =
            _mm_xor_si128(_mm_xor_si128(k[14], previous_plain), _mm_xor_si128(next_plain, k[0]));
        __m128i t = _mm_aesenc_si128(state, k[1]);
        t = _mm_aesenc_si128(t, k[2]);
        t = _mm_aesenc_si128(t, k[3]);
        t = _mm_aesenc_si128(t, k[4]);
        t = _mm_aesenc_si128(t, k[5]);
        t = _mm_aesenc_si128(t, k[6]);
        t = _mm_aesenc_si128(t, k[7]);
        t = _mm_aesenc_si128(t, k[8]);
        t = _mm_aesenc_si128(t, k[9]);
        t = _mm_aesenc_si128(t, k[10]);
        t = _mm_aesenc_si128(t, k[11]);
        t = _mm_aesenc_si128(t, k[12]);
        t = _mm_aesenc_si128(t, k[13]);
        // next state = next_plain ^ cipher_i ^ k0; cipher_i is recovered from it.
        state = _mm_aesenclast_si128(t, last_key);
        _mm_storeu_si128((__m128i *)(output + offset), _mm_xor_si128(state, _mm_xor_si128(next_plain, k[0])));
        previous_plain = plain;
        plain = next_plain;
    }
    memset(k, 0, sizeof(k));
}

AESNI void caesni_aes256_ige_decrypt(const uint8_t *input, uint8_t *output, size_t length,
                                     const uint8_t key[32], const uint8_t iv[32]) {
    if (length < 16) {
        return;
    }
    __m128i d[15];
    expand_decrypt_key(key, d);
    const __m128i zero = _mm_setzero_si128();
    __m128i previous_cipher = _mm_loadu_si128((const __m128i *)iv);
    __m128i cipher = _mm_loadu_si128((const __m128i *)input);
    // state = cipher_i ^ plain_{i-1} ^ d0: the input of the first inverse round.
    __m128i state = _mm_xor_si128(_mm_xor_si128(cipher, _mm_loadu_si128((const __m128i *)(iv + 16))), d[0]);
    for (size_t offset = 0; offset < length; offset += 16) {
        const __m128i next_cipher =
            offset + 16 < length ? _mm_loadu_si128((const __m128i *)(input + offset + 16)) : zero;
        const __m128i last_key =
            _mm_xor_si128(_mm_xor_si128(d[14], previous_cipher), _mm_xor_si128(next_cipher, d[0]));
        __m128i t = _mm_aesdec_si128(state, d[1]);
        t = _mm_aesdec_si128(t, d[2]);
        t = _mm_aesdec_si128(t, d[3]);
        t = _mm_aesdec_si128(t, d[4]);
        t = _mm_aesdec_si128(t, d[5]);
        t = _mm_aesdec_si128(t, d[6]);
        t = _mm_aesdec_si128(t, d[7]);
        t = _mm_aesdec_si128(t, d[8]);
        t = _mm_aesdec_si128(t, d[9]);
        t = _mm_aesdec_si128(t, d[10]);
        t = _mm_aesdec_si128(t, d[11]);
        t = _mm_aesdec_si128(t, d[12]);
        t = _mm_aesdec_si128(t, d[13]);
        // next state = next_cipher ^ plain_i ^ d0; plain_i is recovered from it.
        state = _mm_aesdeclast_si128(t, last_key);
        _mm_storeu_si128((__m128i *)(output + offset), _mm_xor_si128(state, _mm_xor_si128(next_cipher, d[0])));
        previous_cipher = cipher;
        cipher = next_cipher;
    }
    memset(d, 0, sizeof(d));
}

AESNI void caesni_aes256_encrypt_block(const uint8_t key[32], const uint8_t input[16], uint8_t output[16]) {
    __m128i k[15];
    expand_encrypt_key(key, k);
    _mm_storeu_si128((__m128i *)output, encrypt_block(_mm_loadu_si128((const __m128i *)input), k));
    memset(k, 0, sizeof(k));
}

AESNI void caesni_aes256_decrypt_block(const uint8_t key[32], const uint8_t input[16], uint8_t output[16]) {
    __m128i d[15];
    expand_decrypt_key(key, d);
    _mm_storeu_si128((__m128i *)output, decrypt_block(_mm_loadu_si128((const __m128i *)input), d));
    memset(d, 0, sizeof(d));
}

// AES-128 (test vectors only): 10 rounds, every round key from the previous one with RotWord.
#define EXPAND128(k, i, rcon) k[i] = expand_even(k[i - 1], _mm_aeskeygenassist_si128(k[i - 1], rcon));

AESNI static void expand_encrypt_key128(const uint8_t key[16], __m128i k[11]) {
    k[0] = _mm_loadu_si128((const __m128i *)key);
    EXPAND128(k, 1, 0x01)
    EXPAND128(k, 2, 0x02)
    EXPAND128(k, 3, 0x04)
    EXPAND128(k, 4, 0x08)
    EXPAND128(k, 5, 0x10)
    EXPAND128(k, 6, 0x20)
    EXPAND128(k, 7, 0x40)
    EXPAND128(k, 8, 0x80)
    EXPAND128(k, 9, 0x1b)
    EXPAND128(k, 10, 0x36)
}

AESNI void caesni_aes128_ige_encrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[16], const uint8_t iv[32]) {
    __m128i k[11];
    expand_encrypt_key128(key, k);
    __m128i previous_cipher = _mm_loadu_si128((const __m128i *)iv);
    __m128i previous_plain = _mm_loadu_si128((const __m128i *)(iv + 16));
    for (size_t offset = 0; offset + 16 <= length; offset += 16) {
        const __m128i plain = _mm_loadu_si128((const __m128i *)(input + offset));
        __m128i block = _mm_xor_si128(_mm_xor_si128(plain, previous_cipher), k[0]);
        for (int round = 1; round < 10; round++) {
            block = _mm_aesenc_si128(block, k[round]);
        }
        const __m128i cipher = _mm_xor_si128(_mm_aesenclast_si128(block, k[10]), previous_plain);
        _mm_storeu_si128((__m128i *)(output + offset), cipher);
        previous_cipher = cipher;
        previous_plain = plain;
    }
}

AESNI void caesni_aes128_ige_decrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[16], const uint8_t iv[32]) {
    __m128i k[11];
    __m128i d[11];
    expand_encrypt_key128(key, k);
    d[0] = k[10];
    for (int i = 1; i < 10; i++) {
        d[i] = _mm_aesimc_si128(k[10 - i]);
    }
    d[10] = k[0];
    __m128i previous_cipher = _mm_loadu_si128((const __m128i *)iv);
    __m128i previous_plain = _mm_loadu_si128((const __m128i *)(iv + 16));
    for (size_t offset = 0; offset + 16 <= length; offset += 16) {
        const __m128i cipher = _mm_loadu_si128((const __m128i *)(input + offset));
        __m128i block = _mm_xor_si128(_mm_xor_si128(cipher, previous_plain), d[0]);
        for (int round = 1; round < 10; round++) {
            block = _mm_aesdec_si128(block, d[round]);
        }
        const __m128i plain = _mm_xor_si128(_mm_aesdeclast_si128(block, d[10]), previous_cipher);
        _mm_storeu_si128((__m128i *)(output + offset), plain);
        previous_cipher = cipher;
        previous_plain = plain;
    }
}

#else

// Not x86: no AES-NI. caesni_available() says so and callers take the OpenSSL route; the IGE
// entry points exist only so the module links, and are never called.
int caesni_available(void) { return 0; }

void caesni_aes256_ige_encrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[32], const uint8_t iv[32]) {
    (void)input; (void)output; (void)length; (void)key; (void)iv;
    __builtin_trap();
}
void caesni_aes256_ige_decrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[32], const uint8_t iv[32]) {
    (void)input; (void)output; (void)length; (void)key; (void)iv;
    __builtin_trap();
}
void caesni_aes128_ige_encrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[16], const uint8_t iv[32]) {
    (void)input; (void)output; (void)length; (void)key; (void)iv;
    __builtin_trap();
}
void caesni_aes128_ige_decrypt(const uint8_t *input, uint8_t *output, size_t length,
                               const uint8_t key[16], const uint8_t iv[32]) {
    (void)input; (void)output; (void)length; (void)key; (void)iv;
    __builtin_trap();
}
void caesni_aes256_encrypt_block(const uint8_t key[32], const uint8_t input[16], uint8_t output[16]) {
    (void)key; (void)input; (void)output;
    __builtin_trap();
}
void caesni_aes256_decrypt_block(const uint8_t key[32], const uint8_t input[16], uint8_t output[16]) {
    (void)key; (void)input; (void)output;
    __builtin_trap();
}

#endif
