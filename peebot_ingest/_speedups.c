/* The writer path's two per-row loops in C: event ids and binary COPY rows.
 *
 * Optional: `hatch_build.py` compiles this where a C compiler, Python's headers and
 * OpenSSL's headers are present, and `peebot_ingest.speedups` falls back to the Python
 * code (`columns.event_ids`, `copy_rows.write_rows`) where they are not. Both give the same
 * bytes; tests/ingest/test_ingest_speedups.py compares them on random input.
 * See docs/ARCHITECTURE.md, "Ingest".
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA1_Init & co: deprecated, and the fastest way */
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <openssl/sha.h>

/* -- event ids ------------------------------------------------------------------------ */

/* UUIDv5 bytes of namespace + name, from a SHA-1 state that has taken the namespace. */
static PyObject *
uuid5_from(const SHA_CTX *namespace, const char *name, size_t len)
{
    SHA_CTX ctx = *namespace;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1_Update(&ctx, name, len);
    SHA1_Final(digest, &ctx);
    digest[6] = (digest[6] & 0x0F) | 0x50;
    digest[8] = (digest[8] & 0x3F) | 0x80;
    return PyBytes_FromStringAndSize((const char *)digest, 16);
}

/* Appends "<item>|<micros>|<repr(value)>" to buf (at least 64 bytes beyond the item). */
static Py_ssize_t
event_name(char *buf, Py_ssize_t cap, PyObject *item, PyObject *micros, PyObject *value)
{
    Py_ssize_t item_len;
    const char *item_text = PyUnicode_AsUTF8AndSize(item, &item_len);
    if (item_text == NULL)
        return -1;
    long long us = PyLong_AsLongLong(micros);
    if (us == -1 && PyErr_Occurred())
        return -1;
    if (!PyFloat_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "event ids: a value is not a float");
        return -1;
    }
    char *repr = PyOS_double_to_string(PyFloat_AS_DOUBLE(value), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (repr == NULL)
        return -1;
    size_t repr_len = strlen(repr);
    if ((size_t)item_len + repr_len + 32 > (size_t)cap) {
        PyMem_Free(repr);
        PyErr_SetString(PyExc_ValueError, "event ids: an item name is too long");
        return -1;
    }
    memcpy(buf, item_text, item_len);
    Py_ssize_t n = item_len;
    n += sprintf(buf + n, "|%lld|", us);
    memcpy(buf + n, repr, repr_len);
    PyMem_Free(repr);
    return n + (Py_ssize_t)repr_len;
}

static PyObject *
event_ids(PyObject *self, PyObject *args)
{
    Py_buffer namespace;
    PyObject *items, *micros, *values;
    if (!PyArg_ParseTuple(args, "y*O!O!O!", &namespace, &PyList_Type, &items, &PyList_Type,
                          &micros, &PyList_Type, &values))
        return NULL;
    SHA_CTX start;
    SHA1_Init(&start);
    SHA1_Update(&start, namespace.buf, namespace.len);
    PyBuffer_Release(&namespace);
    Py_ssize_t n = PyList_GET_SIZE(items);
    if (PyList_GET_SIZE(micros) != n || PyList_GET_SIZE(values) != n) {
        PyErr_SetString(PyExc_ValueError, "event ids: columns of different lengths");
        return NULL;
    }
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    char name[512];
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len = event_name(name, sizeof name, PyList_GET_ITEM(items, i),
                                    PyList_GET_ITEM(micros, i), PyList_GET_ITEM(values, i));
        PyObject *id = len < 0 ? NULL : uuid5_from(&start, name, (size_t)len);
        if (id == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, id);
    }
    return out;
}

/* -- update columns -------------------------------------------------------------------- */

/* Interned field names (the listener's dict keys are equal strings, so hashes are cached). */
static PyObject *k_timestamp, *k_value, *k_class, *k_calibrated, *k_indicator, *k_color;

static PyObject *
field(PyObject *fields, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(fields, key);
    return v != NULL || PyErr_Occurred() ? v : Py_None;
}

/* Whitespace as float() strips it from ASCII text: \t \n \v \f \r and space (Py_ISSPACE).
 * str.strip() also strips \x1c-\x1f, but text with those is never a number. */
static int
ascii_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The bounds of ASCII `text` without its leading and trailing whitespace. */
static void
strip_bounds(PyObject *text, Py_ssize_t *start, Py_ssize_t *end)
{
    const unsigned char *c = PyUnicode_DATA(text);
    Py_ssize_t a = 0, b = PyUnicode_GET_LENGTH(text);
    while (a < b && ascii_space(c[a]))
        a++;
    while (b > a && ascii_space(c[b - 1]))
        b--;
    *start = a;
    *end = b;
}

/* The float of plain numeric feed text (`columns.number_column`'s rule): ASCII, no "_", at
 * most 64 characters, finite; parsed as float() parses it (stripped, then
 * PyOS_string_to_double over all of the rest). NULL without an error when not one. */
static PyObject *
plain_number(PyObject *text)
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text) ||
        PyUnicode_GET_LENGTH(text) > 64)
        return NULL;
    const char *data = PyUnicode_DATA(text);
    if (memchr(data, '_', PyUnicode_GET_LENGTH(text)) != NULL)
        return NULL;
    Py_ssize_t a, b;
    strip_bounds(text, &a, &b);
    char buf[72];
    memcpy(buf, data + a, b - a);
    buf[b - a] = '\0';
    char *end;
    double v = PyOS_string_to_double(buf, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (end != buf + (b - a) || !isfinite(v))
        return NULL;
    return PyFloat_FromDouble(v);
}

/* Plain CalibratedData (`batch_validate._plain_text`): ASCII, at most max_text, no NUL. */
static int
plain_text(PyObject *text, Py_ssize_t max_text)
{
    return PyUnicode_CheckExact(text) && PyUnicode_IS_ASCII(text) &&
           PyUnicode_GET_LENGTH(text) <= max_text &&
           memchr(PyUnicode_DATA(text), '\0', PyUnicode_GET_LENGTH(text)) == NULL;
}

/* Appends `v` (a new reference, NULL for an error) to `list`. */
static int
append_new(PyObject *list, PyObject *v)
{
    if (v == NULL)
        return -1;
    int rc = PyList_Append(list, v);
    Py_DECREF(v);
    return rc;
}

/* The metadata tail of (indicator, color, snapshot), a borrowed reference kept in
 * `last_tail` while the next rows have the same three (as a feed's rows mostly do). */
static PyObject *last_key[3], *last_tail;

static int
same_key(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (a == NULL || !PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b))
        return 0;
    return PyUnicode_Compare(a, b) == 0;
}

static PyObject *
meta_tail_of(PyObject *indicator, PyObject *color, PyObject *snapshot, PyObject *tails,
             PyObject *meta_tail)
{
    if (last_tail != NULL && same_key(last_key[0], indicator) && same_key(last_key[1], color) &&
        last_key[2] == snapshot)
        return last_tail;
    PyObject *key = PyTuple_Pack(3, indicator, color, snapshot);
    if (key == NULL)
        return NULL;
    PyObject *tail = PyDict_GetItemWithError(tails, key);
    if (tail != NULL)
        Py_INCREF(tail);
    else if (!PyErr_Occurred())
        tail = PyObject_CallFunctionObjArgs(meta_tail, indicator, color, snapshot, NULL);
    Py_DECREF(key);
    if (tail == NULL)
        return NULL;
    if (!PyUnicode_Check(tail)) {
        Py_DECREF(tail);
        PyErr_SetString(PyExc_TypeError, "update columns: a metadata tail is not a str");
        return NULL;
    }
    PyObject *old[4] = {last_key[0], last_key[1], last_key[2], last_tail};
    last_key[0] = Py_NewRef(indicator);
    last_key[1] = Py_NewRef(color);
    last_key[2] = Py_NewRef(snapshot);
    last_tail = tail;
    for (int k = 0; k < 4; k++)
        Py_XDECREF(old[k]);
    return last_tail;
}

/* '{"raw_ts": "' + raw_ts.strip() + tail (raw_ts is ASCII: it parsed as a number). */
static PyObject *
metadata_text(PyObject *raw_ts, PyObject *tail)
{
    static const char head[] = "{\"raw_ts\": \"";
    Py_ssize_t a, b, h = sizeof head - 1;
    strip_bounds(raw_ts, &a, &b);
    if (!PyUnicode_IS_ASCII(tail)) {
        PyObject *ts = PyUnicode_Substring(raw_ts, a, b);
        PyObject *meta = ts == NULL ? NULL : PyUnicode_FromFormat("%s%U%U", head, ts, tail);
        Py_XDECREF(ts);
        return meta;
    }
    Py_ssize_t t = PyUnicode_GET_LENGTH(tail);
    PyObject *meta = PyUnicode_New(h + (b - a) + t, 127);
    if (meta == NULL)
        return NULL;
    char *out = PyUnicode_DATA(meta);
    memcpy(out, head, h);
    memcpy(out + h, (const char *)PyUnicode_DATA(raw_ts) + a, b - a);
    memcpy(out + h + (b - a), PyUnicode_DATA(tail), t);
    return meta;
}

/* One update of the batch into the columns; 1: taken, 0: not clean (the caller falls back
 * to the Python columns), -1: an error. */
static int
clean_row(PyObject *update, PyObject *good_items, PyObject *class_text, Py_ssize_t max_text,
          PyObject *tails, PyObject *meta_tail, PyObject **cols)
{
    if (!PyTuple_CheckExact(update) || PyTuple_GET_SIZE(update) != 4)
        return 0;
    PyObject *item = PyTuple_GET_ITEM(update, 0), *fields = PyTuple_GET_ITEM(update, 1),
             *received = PyTuple_GET_ITEM(update, 2), *snapshot = PyTuple_GET_ITEM(update, 3);
    if (!PyUnicode_CheckExact(item) || !PyDict_CheckExact(fields) ||
        !PyFloat_CheckExact(received) || !isfinite(PyFloat_AS_DOUBLE(received)) ||
        !PyBool_Check(snapshot))
        return 0;
    int known = PySet_Contains(good_items, item);
    if (known <= 0)
        return known;
    PyObject *raw_ts = field(fields, k_timestamp), *raw_value = field(fields, k_value),
             *raw_class = field(fields, k_class), *raw_cal = field(fields, k_calibrated),
             *indicator = field(fields, k_indicator), *color = field(fields, k_color);
    if (!raw_ts || !raw_value || !raw_class || !raw_cal || !indicator || !color)
        return -1;
    if ((indicator != Py_None && !PyUnicode_CheckExact(indicator)) ||
        (color != Py_None && !PyUnicode_CheckExact(color)))
        return 0;
    PyObject *klass = Py_None;
    if (raw_class != Py_None) {
        if (!PyUnicode_CheckExact(raw_class))
            return 0;
        klass = PyDict_GetItemWithError(class_text, raw_class);
        if (klass == NULL) {
            if (PyErr_Occurred())
                return -1;
            if (PyUnicode_GET_LENGTH(raw_class) != 0)
                return 0;
            klass = Py_None;
        }
    }
    PyObject *calibrated = Py_None;
    if (raw_cal != Py_None) {
        if (!plain_text(raw_cal, max_text))
            return 0;
        if (PyUnicode_GET_LENGTH(raw_cal))
            calibrated = raw_cal;
    }
    PyObject *hours = plain_number(raw_ts);
    if (hours == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *value = plain_number(raw_value);
    if (value == NULL) {
        Py_DECREF(hours);
        return PyErr_Occurred() ? -1 : 0;
    }
    if (append_new(cols[1], hours) < 0 || append_new(cols[2], value) < 0)
        return -1;
    /* metadata: '{"raw_ts": "' + raw_ts.strip() + the tail of (indicator, color, snapshot) */
    PyObject *tail = meta_tail_of(indicator, color, snapshot, tails, meta_tail);
    if (tail == NULL || append_new(cols[6], metadata_text(raw_ts, tail)) < 0)
        return -1;
    if (PyList_Append(cols[0], item) < 0 || PyList_Append(cols[3], klass) < 0 ||
        PyList_Append(cols[4], calibrated) < 0 || PyList_Append(cols[5], received) < 0)
        return -1;
    return 1;
}

static PyObject *
update_columns(PyObject *self, PyObject *args)
{
    PyObject *batch, *good_items, *class_text, *tails, *meta_tail;
    Py_ssize_t max_text;
    if (!PyArg_ParseTuple(args, "O!O!O!nO!O", &PyList_Type, &batch, &PySet_Type, &good_items,
                          &PyDict_Type, &class_text, &max_text, &PyDict_Type, &tails,
                          &meta_tail))
        return NULL;
    /* items, hours, values, classes, calibrated, received, metadata */
    PyObject *cols[7] = {NULL};
    for (int c = 0; c < 7; c++)
        if ((cols[c] = PyList_New(0)) == NULL)
            goto fail;
    Py_ssize_t n = PyList_GET_SIZE(batch);
    for (Py_ssize_t i = 0; i < n; i++) {
        int rc = clean_row(PyList_GET_ITEM(batch, i), good_items, class_text, max_text, tails,
                           meta_tail, cols);
        if (rc < 0)
            goto fail;
        if (rc == 0) { /* not clean: the Python columns decide what to do with it */
            for (int c = 0; c < 7; c++)
                Py_DECREF(cols[c]);
            Py_RETURN_NONE;
        }
    }
    PyObject *out = PyTuple_New(7);
    if (out == NULL)
        goto fail;
    for (int c = 0; c < 7; c++)
        PyTuple_SET_ITEM(out, c, cols[c]);
    return out;
fail:
    for (int c = 0; c < 7; c++)
        Py_XDECREF(cols[c]);
    return NULL;
}

/* -- readings -------------------------------------------------------------------------- */

/* ValidatedReading tuples from columns, untracked by the garbage collector: every field is
 * a str, int, float, bytes or None, so a reading can never be part of a reference cycle
 * (CPython untracks plain tuples of such values itself, but not a namedtuple). A backlog
 * holds tens of thousands of them; tracked, each collection would walk them all. */
static PyObject *
readings(PyObject *self, PyObject *args)
{
    PyTypeObject *cls;
    PyObject *cols[8], *source;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!O!O!U", &PyType_Type, &cls, &PyList_Type,
                          &cols[0], &PyList_Type, &cols[1], &PyList_Type, &cols[2],
                          &PyList_Type, &cols[3], &PyList_Type, &cols[4], &PyList_Type,
                          &cols[5], &PyList_Type, &cols[6], &PyList_Type, &cols[7], &source))
        return NULL;
    if (!PyType_IsSubtype(cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "readings: the class is not a tuple type");
        return NULL;
    }
    if (!PyUnicode_CheckExact(source)) {
        PyErr_SetString(PyExc_TypeError, "readings: a field is not a plain value");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(cols[0]);
    for (int c = 1; c < 8; c++) {
        if (PyList_GET_SIZE(cols[c]) != n) {
            PyErr_SetString(PyExc_ValueError, "readings: columns of different lengths");
            return NULL;
        }
    }
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int c = 0; c < 8; c++) {
            PyObject *v = PyList_GET_ITEM(cols[c], i);
            if (!(v == Py_None || PyUnicode_CheckExact(v) || PyLong_CheckExact(v) ||
                  PyFloat_CheckExact(v) || PyBytes_CheckExact(v))) {
                PyErr_SetString(PyExc_TypeError, "readings: a field is not a plain value");
                Py_DECREF(out);
                return NULL;
            }
        }
        PyObject *r = cls->tp_alloc(cls, 9);
        if (r == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        for (int c = 0; c < 8; c++)
            PyTuple_SET_ITEM(r, c, Py_NewRef(PyList_GET_ITEM(cols[c], i)));
        PyTuple_SET_ITEM(r, 8, Py_NewRef(source));
        PyObject_GC_UnTrack(r);
        PyList_SET_ITEM(out, i, r);
    }
    return out;
}

/* -- binary COPY rows ------------------------------------------------------------------ */

typedef struct {
    char *data;
    size_t len, cap;
} Buffer;

static int
grow(Buffer *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + more)
        cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static void
put16(Buffer *b, int16_t v)
{
    uint16_t u = (uint16_t)v;
    b->data[b->len++] = (char)(u >> 8);
    b->data[b->len++] = (char)u;
}

static void
put32(Buffer *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    for (int shift = 24; shift >= 0; shift -= 8)
        b->data[b->len++] = (char)(u >> shift);
}

static void
put64(Buffer *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int shift = 56; shift >= 0; shift -= 8)
        b->data[b->len++] = (char)(u >> shift);
}

/* A field of bytes (text, bytea, jsonb with its version byte `prefix` when >= 0), or NULL. */
static int
put_bytes(Buffer *b, const char *data, Py_ssize_t len, int prefix)
{
    Py_ssize_t total = len + (prefix >= 0);
    if (total > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "COPY rows: a field is too long");
        return -1;
    }
    if (grow(b, 4 + (size_t)total) < 0)
        return -1;
    put32(b, (int32_t)total);
    if (prefix >= 0)
        b->data[b->len++] = (char)prefix;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int
put_text(Buffer *b, PyObject *text, int prefix)
{
    if (text == Py_None) {
        if (grow(b, 4) < 0)
            return -1;
        put32(b, -1);
        return 0;
    }
    if (!PyUnicode_CheckExact(text)) {
        PyErr_SetString(PyExc_TypeError, "COPY rows: a text field is not a str");
        return -1;
    }
    Py_ssize_t len;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &len);
    return utf8 == NULL ? -1 : put_bytes(b, utf8, len, prefix);
}

static int
int_in(PyObject *v, long long lo, long long hi, long long *out)
{
    if (!PyLong_CheckExact(v)) {
        PyErr_SetString(PyExc_TypeError, "COPY rows: an integer field is not an int");
        return -1;
    }
    *out = PyLong_AsLongLong(v);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (*out < lo || *out > hi) {
        PyErr_SetString(PyExc_OverflowError, "COPY rows: an integer out of its column's range");
        return -1;
    }
    return 0;
}

/* Microseconds since 1970 of `datetime.fromtimestamp(t, UTC)`: CPython's
 * _PyTime_DoubleToDenominator with round half to even, step for step. */
static int
micros_of_timestamp(double t, long long *out)
{
    if (!isfinite(t) || fabs(t) > 253402300800.0) { /* beyond year 9999 */
        PyErr_SetString(PyExc_OverflowError, "COPY rows: a receipt time out of range");
        return -1;
    }
    double intpart;
    double floatpart = modf(t, &intpart) * 1e6;
    double rounded = round(floatpart);
    if (fabs(floatpart - rounded) == 0.5)
        rounded = 2.0 * round(floatpart / 2.0);
    floatpart = rounded;
    if (floatpart >= 1e6) {
        floatpart -= 1e6;
        intpart += 1.0;
    }
    else if (floatpart < 0) {
        floatpart += 1e6;
        intpart -= 1.0;
    }
    *out = (long long)intpart * 1000000LL + (long long)floatpart;
    return 0;
}

#define PG_EPOCH_US 946684800000000LL /* 2000-01-01 UTC in microseconds since 1970 */

/* One reading (a ValidatedReading tuple) as one COPY row of the reading columns. */
static int
put_row(Buffer *b, PyObject *row, PyObject *channels, int direct, PyObject **last_received,
        long long *ingested)
{
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) < 8) {
        PyErr_SetString(PyExc_TypeError, "COPY rows: a reading is not a ValidatedReading");
        return -1;
    }
    PyObject *item = PyTuple_GET_ITEM(row, 0), *ts = PyTuple_GET_ITEM(row, 1),
             *value = PyTuple_GET_ITEM(row, 2), *klass = PyTuple_GET_ITEM(row, 3),
             *calibrated = PyTuple_GET_ITEM(row, 4), *event = PyTuple_GET_ITEM(row, 5),
             *received = PyTuple_GET_ITEM(row, 6), *meta = PyTuple_GET_ITEM(row, 7);
    PyObject *channel = PyDict_GetItemWithError(channels, item);
    if (channel == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, item);
        return -1;
    }
    long long channel_id, us, klass_v = 0;
    if (int_in(channel, INT32_MIN, INT32_MAX, &channel_id) < 0)
        return -1;
    if (int_in(ts, LLONG_MIN + PG_EPOCH_US, LLONG_MAX, &us) < 0)
        return -1;
    if (!PyFloat_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "COPY rows: a value is not a float");
        return -1;
    }
    if (klass != Py_None && int_in(klass, INT16_MIN, INT16_MAX, &klass_v) < 0)
        return -1;
    if (!PyBytes_CheckExact(event)) {
        PyErr_SetString(PyExc_TypeError, "COPY rows: an event id is not bytes");
        return -1;
    }
    if (received != *last_received) { /* a replay stamps all its rows alike */
        if (!PyFloat_CheckExact(received)) {
            PyErr_SetString(PyExc_TypeError, "COPY rows: a receipt time is not a float");
            return -1;
        }
        if (micros_of_timestamp(PyFloat_AS_DOUBLE(received), ingested) < 0)
            return -1;
        *last_received = received;
    }
    if (grow(b, 2 + 8 + 12 + 12) < 0)
        return -1;
    put16(b, 8);
    put32(b, 4);
    put32(b, (int32_t)channel_id);
    put32(b, 8);
    put64(b, us - PG_EPOCH_US);
    double v = PyFloat_AS_DOUBLE(value);
    int64_t bits;
    memcpy(&bits, &v, 8);
    put32(b, 8);
    put64(b, bits);
    if (put_text(b, calibrated, -1) < 0)
        return -1;
    if (grow(b, 4 + 2) < 0)
        return -1;
    if (klass == Py_None)
        put32(b, -1);
    else {
        put32(b, 2);
        put16(b, (int16_t)klass_v);
    }
    if (put_bytes(b, PyBytes_AS_STRING(event), PyBytes_GET_SIZE(event), -1) < 0)
        return -1;
    if (grow(b, 12) < 0)
        return -1;
    put32(b, 8);
    put64(b, *ingested - PG_EPOCH_US);
    return put_text(b, meta, direct && meta != Py_None ? 1 : -1);
}

static PyObject *
copy_rows(PyObject *self, PyObject *args)
{
    PyObject *readings, *channels;
    int direct;
    if (!PyArg_ParseTuple(args, "O!O!p", &PyList_Type, &readings, &PyDict_Type, &channels,
                          &direct))
        return NULL;
    Buffer b = {NULL, 0, 0};
    PyObject *last_received = NULL;
    long long ingested = 0;
    Py_ssize_t n = PyList_GET_SIZE(readings);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (put_row(&b, PyList_GET_ITEM(readings, i), channels, direct, &last_received,
                    &ingested) < 0) {
            PyMem_Free(b.data);
            return NULL;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data ? b.data : "", (Py_ssize_t)b.len);
    PyMem_Free(b.data);
    return out;
}

static PyMethodDef methods[] = {
    {"event_ids", event_ids, METH_VARARGS,
     "event_ids(namespace, items, micros, values) -> list of 16-byte UUIDv5 event ids"},
    {"update_columns", update_columns, METH_VARARGS,
     "update_columns(batch, good_items, class_text, max_text, tails, meta_tail) -> the columns "
     "of a batch of clean updates (items, hours, values, classes, calibrated, received, "
     "metadata), or None when one is not clean"},
    {"readings", readings, METH_VARARGS,
     "readings(cls, items, micros, values, classes, calibrated, ids, received, metadata, "
     "source) -> cls tuples of the columns, untracked by the garbage collector"},
    {"copy_rows", copy_rows, METH_VARARGS,
     "copy_rows(readings, channels, direct) -> the readings as binary COPY rows"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "The writer path's per-row loops in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (!(k_timestamp = PyUnicode_InternFromString("TimeStamp")) ||
        !(k_value = PyUnicode_InternFromString("Value")) ||
        !(k_class = PyUnicode_InternFromString("Status.Class")) ||
        !(k_calibrated = PyUnicode_InternFromString("CalibratedData")) ||
        !(k_indicator = PyUnicode_InternFromString("Status.Indicator")) ||
        !(k_color = PyUnicode_InternFromString("Status.Color")))
        return NULL;
    return PyModule_Create(&module);
}
