/* Safetensors file I/O: checkpoints are Hugging Face safetensors so that
 * PyTorch and other tools read them unchanged (DESIGN.md, "Files and formats").
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of a UTF-8 JSON object
 *   {"__metadata__": {"key": "value", ...},          (optional, strings only)
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * then the data buffer; offsets are relative to its start, the tensors tile it
 * exactly (no holes, no overlaps, no trailing bytes), and the data is raw
 * little-endian, row-major.
 *
 * Writing is atomic (temporary file in the same directory, fsync, rename), so
 * a crash or a failed write never leaves a half checkpoint at the path.
 * Reading validates the whole file, because it is untrusted input: every
 * length is checked before it is used, and every failure is a status with a
 * message naming the file and what was expected, never a crash. */
#ifndef SL_SAFETENSORS_H
#define SL_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/kv.h"
#include "core/status.h"

/* The reader rejects larger headers before parsing them (the reference Rust
 * implementation's limit), so a hostile length cannot make it allocate. */
#define SL_ST_MAX_HEADER 100000000u
/* More dims than any seqlab tensor has; a cap keeps shape[] fixed-size. */
#define SL_ST_MAX_DIMS 8

/* File names "F32", "I32", "I64", "F64", "U8"; other safetensors dtypes
 * (BF16, F16, BOOL, ...) are reported as unknown. */
typedef enum { SL_DT_F32, SL_DT_I32, SL_DT_I64, SL_DT_F64, SL_DT_U8 } sl_dtype;

/* Bytes per element (4, 4, 8, 8, 1), and the file's name for the dtype;
 * 0 and "?" for a value outside the enum. */
size_t sl_st_dtype_size(sl_dtype dt);
const char *sl_st_dtype_name(sl_dtype dt);

/* One tensor: ndim in [0, SL_ST_MAX_DIMS] (0 is a scalar of one element);
 * shape[0..ndim) >= 0; nbytes == sl_st_dtype_size(dtype) * product(shape).
 * data may be NULL when nbytes is 0. */
typedef struct sl_st_tensor {
    const char *name;
    sl_dtype dtype;
    int ndim;
    int64_t shape[SL_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} sl_st_tensor;

/* A __metadata__ entry (string key and value). */
typedef sl_kv sl_st_meta;

/* Writes the tensors, data in the given order, and the metadata to path.
 * The header lists "__metadata__" first (omitted when nmeta is 0), then the
 * tensors in the given order, and is padded with spaces to a multiple of 8
 * bytes. Offsets tile the data buffer in the given order, so a tensor lands
 * aligned for its dtype in the file only if the bytes before it are a
 * multiple of its element size: list wider dtypes first when other readers
 * will map the file (sl_st_read itself aligns whatever it gets).
 *
 * Atomic: writes a temporary file in path's directory, fsyncs it, renames it
 * over path. On any failure the temporary file is removed and path is left
 * as it was.
 *
 * SL_ERR_ARG: NULL pointers, a tensor breaking the rules above, a name that
 * is "__metadata__", a duplicate tensor name or metadata key, a string that
 * is not valid UTF-8, a header over SL_ST_MAX_HEADER. SL_ERR_IO: the file
 * system refused (missing directory, no permission, disk full). */
sl_status sl_st_write(const char *path, const sl_st_tensor *t, size_t nt, const sl_st_meta *meta,
                      size_t nmeta);

/* The metadata key of a sealed file's digest: CRC-32C (core/crc32c.h) of
 * the whole file, from the 8-byte length to the last data byte, taken with
 * the digest's own 8 characters read as "00000000"; the value is 8 lowercase
 * hex digits, big-endian (the CRC as printf's %08x writes it). The header
 * holds it once, as "seqlab_crc32c": then the 8 digits in quotes, with no
 * space between. */
#define SL_ST_DIGEST_KEY "seqlab_crc32c"

/* sl_st_write, sealed: adds SL_ST_DIGEST_KEY as the last metadata entry
 * (meta may not hold it). */
sl_status sl_st_write_sealed(const char *path, const sl_st_tensor *t, size_t nt,
                             const sl_st_meta *meta, size_t nmeta);

/* A file read into memory. tensors[] and meta[] (and every name, key, value
 * and data pointer in them) point into storage the struct owns, valid until
 * sl_st_close. tensors[] are in data-buffer order, which for files from
 * sl_st_write is the order they were written in; meta[] is in header order.
 * Every data pointer is aligned to its dtype (64-byte aligned when the
 * tensor's offset is a multiple of 64). The other fields are private. */
typedef struct sl_st_file {
    sl_st_tensor *tensors;
    size_t ntensors;
    sl_st_meta *meta;
    size_t nmeta;
    char *path;      /* for sl_st_expect's messages */
    void *bytes;     /* the file, placed so the data buffer is 64-byte aligned */
    void *side;      /* aligned copies of tensors whose offset breaks alignment */
    char *strings;   /* names, keys and values, NUL-terminated */
    size_t *by_name; /* indices into tensors[], sorted by name, for lookups */
    bool sealed;     /* it held SL_ST_DIGEST_KEY, and the digest matched */
} sl_st_file;

/* Reads and validates the whole file. On success f owns the contents; on
 * failure f is left empty (sl_st_close on it is harmless). A sealed file's
 * digest is verified: any changed byte is SL_ERR_FORMAT. A file without one
 * (other writers; seqlab before it sealed its checkpoints) loads with f->sealed false;
 * but a metadata key one byte away from SL_ST_DIGEST_KEY, or a digest not
 * in the exact form above, is taken for damage and refused.
 * SL_ERR_IO: cannot open or read path. SL_ERR_OOM: out of memory.
 * SL_ERR_FORMAT: anything wrong with the contents. cJSON parses the header,
 * so its number syntax is a little looser than JSON's (e.g. "+1"); every
 * other departure from JSON is rejected. */
sl_status sl_st_read(const char *path, sl_st_file *f);

/* The tensor with that name, or NULL. */
const sl_st_tensor *sl_st_find(const sl_st_file *f, const char *name);
/* The metadata value for key, or NULL. */
const char *sl_st_meta_find(const sl_st_file *f, const char *key);

/* For readers that need one exact tensor: checks that name exists with dtype
 * dt and shape[0..ndim) (shape may be NULL when ndim is 0) and sets *data.
 * SL_ERR_FORMAT otherwise, naming the file, the tensor and the expected
 * versus found dtype or shape, or saying it is missing; *data is then NULL.
 * SL_ERR_ARG for a NULL f, name or data, or ndim outside [0, SL_ST_MAX_DIMS]. */
sl_status sl_st_expect(const sl_st_file *f, const char *name, sl_dtype dt, int ndim,
                       const int64_t *shape, const void **data);

void sl_st_close(sl_st_file *f);

#endif
