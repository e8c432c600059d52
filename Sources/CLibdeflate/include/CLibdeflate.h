#ifndef CLIBDEFLATE_H
#define CLIBDEFLATE_H

#include <stddef.h>
#include <stdint.h>

// libdeflate (Debian's libdeflate0, on every machine of this kind) loaded at run time with
// dlopen, so building needs no -dev package: `swift run tgsm sandbox` works on a fresh machine.
// Where the library is missing, `tgsm_libdeflate_available()` is 0 and callers use zlib.
// The signatures and result codes are those of libdeflate's public API (libdeflate.h, 1.x).

typedef struct tgsm_libdeflate_compressor tgsm_libdeflate_compressor;
typedef struct tgsm_libdeflate_decompressor tgsm_libdeflate_decompressor;

#define TGSM_LIBDEFLATE_SUCCESS 0
#define TGSM_LIBDEFLATE_BAD_DATA 1
#define TGSM_LIBDEFLATE_SHORT_OUTPUT 2
#define TGSM_LIBDEFLATE_INSUFFICIENT_SPACE 3

/// 1 when libdeflate.so.0 was found with every function below (looked up once, thread-safe).
int tgsm_libdeflate_available(void);

/// NULL when the library is missing or out of memory.
tgsm_libdeflate_compressor *tgsm_libdeflate_alloc_compressor(int level);
void tgsm_libdeflate_free_compressor(tgsm_libdeflate_compressor *compressor);
size_t tgsm_libdeflate_gzip_compress_bound(tgsm_libdeflate_compressor *compressor, size_t in_nbytes);
/// The archive's size, 0 when it did not fit in `out_nbytes_avail`. `in` may be NULL when `in_nbytes` is 0.
size_t tgsm_libdeflate_gzip_compress(tgsm_libdeflate_compressor *compressor, const void *in, size_t in_nbytes,
                                     void *out, size_t out_nbytes_avail);

tgsm_libdeflate_decompressor *tgsm_libdeflate_alloc_decompressor(void);
void tgsm_libdeflate_free_decompressor(tgsm_libdeflate_decompressor *decompressor);
/// One of the TGSM_LIBDEFLATE_ codes.
int tgsm_libdeflate_gzip_decompress_ex(tgsm_libdeflate_decompressor *decompressor, const void *in, size_t in_nbytes,
                                       void *out, size_t out_nbytes_avail, size_t *actual_in_nbytes_ret,
                                       size_t *actual_out_nbytes_ret);

/// CRC-32 (the gzip and full-transport one): libdeflate's when loaded, zlib's otherwise.
uint32_t tgsm_crc32(uint32_t crc, const void *buffer, size_t length);

#endif
