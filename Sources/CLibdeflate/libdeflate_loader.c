#include "CLibdeflate.h"

#include <dlfcn.h>
#include <pthread.h>
#include <zlib.h>

// The library's own function types (libdeflate.h); its objects are opaque to us.
typedef void *(*alloc_compressor_fn)(int);
typedef void (*free_fn)(void *);
typedef size_t (*compress_bound_fn)(void *, size_t);
typedef size_t (*compress_fn)(void *, const void *, size_t, void *, size_t);
typedef void *(*alloc_decompressor_fn)(void);
typedef int (*decompress_ex_fn)(void *, const void *, size_t, void *, size_t, size_t *, size_t *);
typedef uint32_t (*crc32_fn)(uint32_t, const void *, size_t);

static struct {
    int available;
    alloc_compressor_fn alloc_compressor;
    free_fn free_compressor;
    compress_bound_fn gzip_compress_bound;
    compress_fn gzip_compress;
    alloc_decompressor_fn alloc_decompressor;
    free_fn free_decompressor;
    decompress_ex_fn gzip_decompress_ex;
    crc32_fn crc32;
} library;

static pthread_once_t loaded = PTHREAD_ONCE_INIT;

static void load(void) {
    // The runtime package's name for libdeflate 1.x; the handle stays open for the process's life.
    void *handle = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) return;
    library.alloc_compressor = (alloc_compressor_fn)dlsym(handle, "libdeflate_alloc_compressor");
    library.free_compressor = (free_fn)dlsym(handle, "libdeflate_free_compressor");
    library.gzip_compress_bound = (compress_bound_fn)dlsym(handle, "libdeflate_gzip_compress_bound");
    library.gzip_compress = (compress_fn)dlsym(handle, "libdeflate_gzip_compress");
    library.alloc_decompressor = (alloc_decompressor_fn)dlsym(handle, "libdeflate_alloc_decompressor");
    library.free_decompressor = (free_fn)dlsym(handle, "libdeflate_free_decompressor");
    library.gzip_decompress_ex = (decompress_ex_fn)dlsym(handle, "libdeflate_gzip_decompress_ex");
    library.crc32 = (crc32_fn)dlsym(handle, "libdeflate_crc32");
    library.available = library.alloc_compressor && library.free_compressor && library.gzip_compress_bound
        && library.gzip_compress && library.alloc_decompressor && library.free_decompressor
        && library.gzip_decompress_ex && library.crc32;
}

int tgsm_libdeflate_available(void) {
    pthread_once(&loaded, load);
    return library.available;
}

tgsm_libdeflate_compressor *tgsm_libdeflate_alloc_compressor(int level) {
    if (!tgsm_libdeflate_available()) return NULL;
    return (tgsm_libdeflate_compressor *)library.alloc_compressor(level);
}

void tgsm_libdeflate_free_compressor(tgsm_libdeflate_compressor *compressor) {
    if (compressor != NULL && tgsm_libdeflate_available()) library.free_compressor(compressor);
}

size_t tgsm_libdeflate_gzip_compress_bound(tgsm_libdeflate_compressor *compressor, size_t in_nbytes) {
    if (!tgsm_libdeflate_available()) return 0;
    return library.gzip_compress_bound(compressor, in_nbytes);
}

size_t tgsm_libdeflate_gzip_compress(tgsm_libdeflate_compressor *compressor, const void *in, size_t in_nbytes,
                                     void *out, size_t out_nbytes_avail) {
    static const unsigned char nothing = 0;
    if (compressor == NULL || !tgsm_libdeflate_available()) return 0;
    return library.gzip_compress(compressor, in != NULL ? in : &nothing, in_nbytes, out, out_nbytes_avail);
}

tgsm_libdeflate_decompressor *tgsm_libdeflate_alloc_decompressor(void) {
    if (!tgsm_libdeflate_available()) return NULL;
    return (tgsm_libdeflate_decompressor *)library.alloc_decompressor();
}

void tgsm_libdeflate_free_decompressor(tgsm_libdeflate_decompressor *decompressor) {
    if (decompressor != NULL && tgsm_libdeflate_available()) library.free_decompressor(decompressor);
}

int tgsm_libdeflate_gzip_decompress_ex(tgsm_libdeflate_decompressor *decompressor, const void *in, size_t in_nbytes,
                                       void *out, size_t out_nbytes_avail, size_t *actual_in_nbytes_ret,
                                       size_t *actual_out_nbytes_ret) {
    if (decompressor == NULL || !tgsm_libdeflate_available()) return TGSM_LIBDEFLATE_BAD_DATA;
    return library.gzip_decompress_ex(decompressor, in, in_nbytes, out, out_nbytes_avail, actual_in_nbytes_ret,
                                      actual_out_nbytes_ret);
}

uint32_t tgsm_crc32(uint32_t crc, const void *buffer, size_t length) {
    if (tgsm_libdeflate_available()) return library.crc32(crc, buffer, length);
    // zlib's takes its length as uInt: feed it in pieces a uInt holds.
    const unsigned char *bytes = (const unsigned char *)buffer;
    uLong value = crc;
    while (length > 0) {
        uInt piece = length > 0x40000000u ? 0x40000000u : (uInt)length;
        value = crc32(value, bytes, piece);
        bytes += piece;
        length -= piece;
    }
    return (uint32_t)value;
}
