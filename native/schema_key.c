/* Memo keys of JSON Schemas (grammar/json_schema/merged_keys.py): a token interned for what a schema says,
 * annotations left out, so that equal schemas anywhere in a document are compiled once. Keyed in Python, a
 * compile spent a tenth of its time building the content tuples (118,000 of them over the 92 corpus schemas
 * between 40 and 95 ms); here each item costs a dict lookup. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "native.h"

/* What a keyword's value is to the key (merged_keys.py's _KINDS); a keyword not in `kinds` is plain JSON. */
enum { KIND_ANNOTATION = 0, KIND_MAP = 1, KIND_LIST = 2, KIND_ONE = 3, KIND_ONE_OR_LIST = 4 };

typedef struct {
    PyObject *schemas;  /* id of a schema dict -> its token */
    PyObject *values;   /* id of a plain JSON dict or list -> its token */
    PyObject *interned; /* content tuple -> token */
    PyObject *alive;    /* every node keyed, so that no id is reused while the memo lives */
    PyObject *kinds;    /* keyword -> KIND_* */
    PyObject *schema_marker;
    PyObject *map_marker;
    Py_ssize_t *keyed; /* nodes keyed by this call so far */
} Keys;

/* Nodes keyed between two moments the GIL is let go: about half a millisecond of work. A call holds the GIL
 * throughout otherwise (it reads Python objects), and the largest schema the size limit lets through takes
 * about 10 ms to key; a thread that has waited its switch interval takes the GIL at the next such moment.
 * Every object read is the compile's own (its normalized copy of the schema, the schemas its merges made, its
 * memos), so no other thread changes one meanwhile. */
#define KEYED_BETWEEN_SWITCHES 1024

typedef PyObject *(*ContentOf)(const Keys *keys, PyObject *node);
typedef PyObject *(*TokenOf)(const Keys *keys, PyObject *item);

static PyObject *schema_content(const Keys *keys, PyObject *schema);
static PyObject *value_content(const Keys *keys, PyObject *node);

/* Appends `item` (a new reference, or NULL after an error) to `list`; -1 on error. */
static int append_new(PyObject *list, PyObject *item)
{
    if (item == NULL)
        return -1;
    int result = PyList_Append(list, item);
    Py_DECREF(item);
    return result;
}

/* The token interned for `content` (a list, consumed): the earlier token of an equal content, or a new
 * object(). */
static PyObject *intern_content(const Keys *keys, PyObject *content)
{
    PyObject *tuple = PyList_AsTuple(content);
    Py_DECREF(content);
    if (tuple == NULL)
        return NULL;
    PyObject *token = PyDict_GetItemWithError(keys->interned, tuple);
    if (token != NULL) {
        Py_INCREF(token);
    } else if (!PyErr_Occurred()) {
        token = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
        if (token != NULL && PyDict_SetItem(keys->interned, tuple, token) < 0)
            Py_CLEAR(token);
    }
    Py_DECREF(tuple);
    return token;
}

/* `node`'s token in `memo` (by id), made from `content_of(node)` the first time. */
static PyObject *memoized(const Keys *keys, PyObject *memo, PyObject *node, ContentOf content_of)
{
    PyObject *id = PyLong_FromVoidPtr(node);
    if (id == NULL)
        return NULL;
    PyObject *token = PyDict_GetItemWithError(memo, id);
    if (token != NULL) {
        Py_INCREF(token);
        Py_DECREF(id);
        return token;
    }
    if (PyErr_Occurred() || Py_EnterRecursiveCall(" while keying a schema")) {
        Py_DECREF(id);
        return NULL;
    }
    PyObject *content = content_of(keys, node);
    Py_LeaveRecursiveCall();
    if (++*keys->keyed % KEYED_BETWEEN_SWITCHES == 0) {
        Py_BEGIN_ALLOW_THREADS
        Py_END_ALLOW_THREADS
    }
    token = content != NULL ? intern_content(keys, content) : NULL;
    if (token != NULL && (PyDict_SetItem(memo, id, token) < 0 || PyList_Append(keys->alive, node) < 0))
        Py_CLEAR(token);
    Py_DECREF(id);
    return token;
}

/* A plain JSON value's part of its parent's content: a token for a dict or list, a string as itself, other
 * scalars with their type (1, 1.0 and True are equal in Python, not in a schema), floats and anything else
 * by repr (-0.0 is not 0.0). */
static PyObject *value_token(const Keys *keys, PyObject *value)
{
    if (PyUnicode_Check(value)) {
        Py_INCREF(value);
        return value;
    }
    if (PyDict_Check(value) || PyList_Check(value))
        return memoized(keys, keys->values, value, value_content);
    if (value == Py_None || PyLong_Check(value))
        return PyTuple_Pack(2, (PyObject *)Py_TYPE(value), value);
    PyObject *text = PyObject_Repr(value);
    if (text == NULL)
        return NULL;
    PyObject *pair = PyTuple_Pack(2, (PyObject *)Py_TYPE(value), text);
    Py_DECREF(text);
    return pair;
}

/* A subschema's part: a schema dict's token; a boolean schema (or a value that is no schema, refused where
 * the compiler reads it) as plain JSON. */
static PyObject *sub_token(const Keys *keys, PyObject *sub)
{
    if (PyDict_Check(sub))
        return memoized(keys, keys->schemas, sub, schema_content);
    return value_token(keys, sub);
}

/* [marker, name, token_of(item), ...] of a dict, or [marker, token_of(item), ...] of a list. */
static PyObject *items_content(const Keys *keys, PyObject *node, PyObject *marker, TokenOf token_of)
{
    PyObject *content = PyList_New(0);
    if (content == NULL || PyList_Append(content, marker) < 0)
        goto error;
    if (PyDict_Check(node)) {
        Py_ssize_t at = 0;
        PyObject *name, *item;
        while (PyDict_Next(node, &at, &name, &item))
            if (PyList_Append(content, name) < 0 || append_new(content, token_of(keys, item)) < 0)
                goto error;
    } else {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(node); i++)
            if (append_new(content, token_of(keys, PyList_GET_ITEM(node, i))) < 0)
                goto error;
    }
    return content;
error:
    Py_XDECREF(content);
    return NULL;
}

static PyObject *value_content(const Keys *keys, PyObject *node)
{
    return items_content(keys, node, PyDict_Check(node) ? (PyObject *)&PyDict_Type : (PyObject *)&PyList_Type,
                         value_token);
}

/* The token of a list of schemas, or of a map from names to schemas (interned, not memoized: its parent
 * schema is). */
static PyObject *schemas_token(const Keys *keys, PyObject *value)
{
    PyObject *content =
        items_content(keys, value, PyDict_Check(value) ? keys->map_marker : (PyObject *)&PyList_Type, sub_token);
    return content != NULL ? intern_content(keys, content) : NULL;
}

static PyObject *schema_content(const Keys *keys, PyObject *schema)
{
    PyObject *content = PyList_New(0);
    if (content == NULL || PyList_Append(content, keys->schema_marker) < 0)
        goto error;
    Py_ssize_t at = 0;
    PyObject *name, *value;
    while (PyDict_Next(schema, &at, &name, &value)) {
        PyObject *kind_object = PyDict_GetItemWithError(keys->kinds, name);
        if (kind_object == NULL && PyErr_Occurred())
            goto error;
        long kind = kind_object != NULL ? PyLong_AsLong(kind_object) : -1;
        if (kind == KIND_ANNOTATION)
            continue;
        if (PyList_Append(content, name) < 0)
            goto error;
        PyObject *token;
        if (kind == KIND_ONE || (kind == KIND_ONE_OR_LIST && !PyList_Check(value)))
            token = sub_token(keys, value);
        else if ((kind == KIND_MAP && PyDict_Check(value)) ||
                 ((kind == KIND_LIST || kind == KIND_ONE_OR_LIST) && PyList_Check(value)))
            token = schemas_token(keys, value);
        else
            token = value_token(keys, value);
        if (append_new(content, token) < 0)
            goto error;
    }
    return content;
error:
    Py_XDECREF(content);
    return NULL;
}

PyObject *edge_schema_key(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *schema;
    Py_ssize_t keyed = 0;
    Keys keys = {.keyed = &keyed};
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!OO:schema_key", &PyDict_Type, &schema, &PyDict_Type, &keys.schemas,
                          &PyDict_Type, &keys.values, &PyDict_Type, &keys.interned, &PyList_Type, &keys.alive,
                          &PyDict_Type, &keys.kinds, &keys.schema_marker, &keys.map_marker))
        return NULL;
    return memoized(&keys, keys.schemas, schema, schema_content);
}
