/* Subset construction for a pattern's automaton (grammar/json_schema/char_dfa.py's `_determinize`): the
 * Thompson NFA's states reached together become one state of a character DFA. The same states in the same
 * order as the Python it replaces (its whole compile, for a schema of a few long patterns). */
#include "char_automata.h" /* Python.h first */

#include <stdlib.h>
#include <string.h>

#include "native.h"

typedef struct {
    int32_t *items;
    Py_ssize_t count, room;
} Ints;

static int ints_push(Ints *list, int32_t value)
{
    if (list->count == list->room) {
        Py_ssize_t room = list->room ? list->room * 2 : 256;
        int32_t *grown = realloc(list->items, (size_t)room * sizeof *grown);
        if (!grown)
            return 0;
        list->items = grown;
        list->room = room;
    }
    list->items[list->count++] = value;
    return 1;
}

static int compare_ints(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* An edge's start or end: `point` is low (step +1) or high + 1 (step -1). */
typedef struct {
    int32_t point, target, step;
} Event;

static int compare_events(const void *a, const void *b)
{
    const Event *x = a, *y = b;
    return (x->point > y->point) - (x->point < y->point);
}

typedef struct {
    Py_ssize_t n;
    Ints edge_starts, edges; /* (low, high, target) triples per state */
    Ints epsilon_starts, epsilon;
} Nfa;

/* edges: a list per state of (ranges, target), ranges a sequence of (low, high); epsilon: a list per state of
 * targets. 0 with a Python error set when malformed. */
static int nfa_read(PyObject *edges, PyObject *epsilon, Nfa *nfa)
{
    if (!PyList_Check(edges) || !PyList_Check(epsilon) || PyList_GET_SIZE(edges) != PyList_GET_SIZE(epsilon)) {
        PyErr_SetString(PyExc_TypeError, "edges and epsilon must be lists, one item per state");
        return 0;
    }
    nfa->n = PyList_GET_SIZE(edges);
    for (Py_ssize_t s = 0; s < nfa->n; s++) {
        if (!ints_push(&nfa->edge_starts, (int32_t)(nfa->edges.count / 3)) ||
            !ints_push(&nfa->epsilon_starts, (int32_t)nfa->epsilon.count))
            return PyErr_NoMemory() != NULL;
        PyObject *own = PyList_GET_ITEM(edges, s), *empty = PyList_GET_ITEM(epsilon, s);
        if (!PyList_Check(own) || !PyList_Check(empty)) {
            PyErr_SetString(PyExc_TypeError, "each state's edges and epsilon edges must be lists");
            return 0;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(own); i++) {
            int32_t target;
            PyObject *ranges;
            PyObject *edge = PyList_GET_ITEM(own, i);
            if (!PyArg_ParseTuple(edge, "Oi", &ranges, &target))
                return 0;
            if (target < 0 || target >= nfa->n) {
                PyErr_SetString(PyExc_ValueError, "an edge's target is not a state");
                return 0;
            }
            PyObject *fast = PySequence_Fast(ranges, "an edge's ranges must be a sequence");
            if (!fast)
                return 0;
            for (Py_ssize_t r = 0; r < PySequence_Fast_GET_SIZE(fast); r++) {
                int32_t low, high;
                if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, r), "ii", &low, &high)) {
                    Py_DECREF(fast);
                    return 0;
                }
                if (low < 0 || high > MAX_CODE_POINT || low > high) {
                    Py_DECREF(fast);
                    PyErr_SetString(PyExc_ValueError, "a range is not a range of code points");
                    return 0;
                }
                if (!ints_push(&nfa->edges, low) || !ints_push(&nfa->edges, high) || !ints_push(&nfa->edges, target)) {
                    Py_DECREF(fast);
                    return PyErr_NoMemory() != NULL;
                }
            }
            Py_DECREF(fast);
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(empty); i++) {
            long target = PyLong_AsLong(PyList_GET_ITEM(empty, i));
            if (target == -1 && PyErr_Occurred())
                return 0;
            if (target < 0 || target >= nfa->n) {
                PyErr_SetString(PyExc_ValueError, "an epsilon edge's target is not a state");
                return 0;
            }
            if (!ints_push(&nfa->epsilon, (int32_t)target))
                return PyErr_NoMemory() != NULL;
        }
    }
    if (!ints_push(&nfa->edge_starts, (int32_t)(nfa->edges.count / 3)) ||
        !ints_push(&nfa->epsilon_starts, (int32_t)nfa->epsilon.count))
        return PyErr_NoMemory() != NULL;
    return 1;
}

/* Sorted sets of NFA states to numbers: the DFA states (numbered in order) and, as a cache, the sets of
 * targets a character leads to (numbered by the DFA state their closure is). */
typedef struct {
    Ints starts, members, values;
    int32_t *table; /* indexes into starts/values by hash, -1 empty */
    size_t mask;
} SetMap;

static uint64_t set_hash(const int32_t *items, Py_ssize_t count)
{
    uint64_t hash = 0x9E3779B97F4A7C15u ^ (uint64_t)count;
    for (Py_ssize_t i = 0; i < count; i++)
        hash = (hash ^ (uint64_t)(uint32_t)items[i]) * 0x100000001B3u;
    return hash ^ (hash >> 31);
}

/* The slot of `items` in the table: where it is, or the empty slot where it would go. */
static size_t setmap_slot(const SetMap *map, const int32_t *items, Py_ssize_t count)
{
    size_t slot = (size_t)set_hash(items, count) & map->mask;
    for (;; slot = (slot + 1) & map->mask) {
        int32_t index = map->table[slot];
        if (index < 0)
            return slot;
        int32_t start = map->starts.items[index], length = map->starts.items[index + 1] - start;
        if (length == count && memcmp(&map->members.items[start], items, (size_t)count * sizeof *items) == 0)
            return slot;
    }
}

/* The value of `items`, or -1. */
static int32_t setmap_get(const SetMap *map, const int32_t *items, Py_ssize_t count)
{
    int32_t index = map->table[setmap_slot(map, items, count)];
    return index < 0 ? -1 : map->values.items[index];
}

/* Adds `items` (not in the map) with `value`; 0 out of memory. */
static int setmap_put(SetMap *map, const int32_t *items, Py_ssize_t count, int32_t value)
{
    if ((size_t)map->values.count * 2 >= map->mask) { /* grow: at most half full */
        size_t size = (map->mask + 1) * 2;
        int32_t *table = malloc(size * sizeof *table);
        if (!table)
            return 0;
        memset(table, 0xff, size * sizeof *table);
        int32_t *old = map->table;
        map->table = table;
        map->mask = size - 1;
        for (int32_t index = 0; index < (int32_t)map->values.count; index++) {
            int32_t start = map->starts.items[index];
            map->table[setmap_slot(map, &map->members.items[start], map->starts.items[index + 1] - start)] = index;
        }
        free(old);
    }
    size_t slot = setmap_slot(map, items, count);
    for (Py_ssize_t i = 0; i < count; i++)
        if (!ints_push(&map->members, items[i]))
            return 0;
    if (!ints_push(&map->starts, (int32_t)map->members.count) || !ints_push(&map->values, value))
        return 0;
    map->table[slot] = (int32_t)map->values.count - 1;
    return 1;
}

static int setmap_init(SetMap *map)
{
    map->mask = 63;
    map->table = malloc(64 * sizeof *map->table);
    if (!map->table)
        return 0;
    memset(map->table, 0xff, 64 * sizeof *map->table);
    return ints_push(&map->starts, 0);
}

static void setmap_free(SetMap *map)
{
    free(map->starts.items);
    free(map->members.items);
    free(map->values.items);
    free(map->table);
}

/* The epsilon closure of the states `from` (any order, repeats allowed) into `out`, sorted. */
static int closure(const Nfa *nfa, const int32_t *from, Py_ssize_t count, int32_t *stamp, int32_t mark, Ints *stack,
                   Ints *out)
{
    out->count = stack->count = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if (stamp[from[i]] != mark) {
            stamp[from[i]] = mark;
            if (!ints_push(stack, from[i]))
                return 0;
        }
    while (stack->count) {
        int32_t state = stack->items[--stack->count];
        if (!ints_push(out, state))
            return 0;
        for (int32_t e = nfa->epsilon_starts.items[state]; e < nfa->epsilon_starts.items[state + 1]; e++) {
            int32_t target = nfa->epsilon.items[e];
            if (stamp[target] != mark) {
                stamp[target] = mark;
                if (!ints_push(stack, target))
                    return 0;
            }
        }
    }
    qsort(out->items, (size_t)out->count, sizeof *out->items, compare_ints);
    return 1;
}

/* What subset construction leaves for the Python objects: rows of (low, high, target) triples, and which
 * DFA states hold `end`. */
typedef struct {
    Ints row_starts, rows;
    unsigned char *accepting;
    int32_t n;
} Subsets;

enum { SUBSETS_DONE = 0, SUBSETS_TOO_BIG = 1, SUBSETS_NO_MEMORY = -1 };

/* The construction itself, touching no Python object (it runs without the GIL). */
static int subsets(const Nfa *nfa, int32_t start, int32_t end, int32_t max_states, Subsets *out)
{
    SetMap states = {0}, by_targets = {0};
    Ints stack = {0}, found = {0}, targets = {0}, active = {0}; /* active: the targets open now, each once */
    Event *events = malloc(((size_t)nfa->edges.count / 3 * 2 + 1) * sizeof *events);
    int32_t *stamp = calloc((size_t)nfa->n, sizeof(int32_t));
    int32_t *open = calloc((size_t)nfa->n, sizeof(int32_t)); /* ranges open per target during a sweep */
    unsigned char *listed = calloc((size_t)nfa->n, 1);       /* in `active` */
    int status = SUBSETS_NO_MEMORY;
    if (!events || !stamp || !open || !listed || !setmap_init(&states) || !setmap_init(&by_targets))
        goto done;
    int32_t mark = 1;
    if (!closure(nfa, &start, 1, stamp, mark++, &stack, &found) || !setmap_put(&states, found.items, found.count, 0))
        goto done;
    status = SUBSETS_DONE;
    for (int32_t state = 0; state < (int32_t)states.values.count && status == SUBSETS_DONE; state++) {
        if (!ints_push(&out->row_starts, (int32_t)(out->rows.count / 3))) {
            status = SUBSETS_NO_MEMORY;
            break;
        }
        /* Every edge of every member, cut at each range end: one sweep over the sorted ends. */
        Py_ssize_t n_events = 0;
        for (int32_t m = states.starts.items[state]; m < states.starts.items[state + 1]; m++) {
            int32_t member = states.members.items[m];
            for (int32_t e = nfa->edge_starts.items[member]; e < nfa->edge_starts.items[member + 1]; e++) {
                const int32_t *edge = &nfa->edges.items[3 * e];
                events[n_events++] = (Event){edge[0], edge[2], 1};
                events[n_events++] = (Event){edge[1] + 1, edge[2], -1};
            }
        }
        qsort(events, (size_t)n_events, sizeof *events, compare_events);
        Py_ssize_t row_first = out->rows.count / 3, previous_targets = -1;
        int32_t previous_count = 0;
        targets.count = 0; /* this row's target sets, one after another */
        for (Py_ssize_t i = 0; i < n_events && status == SUBSETS_DONE;) {
            int32_t low = events[i].point;
            for (; i < n_events && events[i].point == low; i++) {
                int32_t target = events[i].target;
                open[target] += events[i].step;
                if (open[target] > 0 && !listed[target]) {
                    listed[target] = 1;
                    if (!ints_push(&active, target))
                        status = SUBSETS_NO_MEMORY;
                }
            }
            Py_ssize_t kept = 0; /* drop the closed ones */
            for (Py_ssize_t a = 0; a < active.count; a++) {
                if (open[active.items[a]] > 0)
                    active.items[kept++] = active.items[a];
                else
                    listed[active.items[a]] = 0;
            }
            active.count = kept;
            if (status != SUBSETS_DONE || i == n_events || !active.count)
                continue;
            int32_t high = events[i].point - 1;
            Py_ssize_t targets_at = targets.count;
            for (Py_ssize_t a = 0; a < active.count; a++)
                if (!ints_push(&targets, active.items[a]))
                    status = SUBSETS_NO_MEMORY;
            if (status != SUBSETS_DONE)
                break;
            int32_t *reached = &targets.items[targets_at];
            qsort(reached, (size_t)active.count, sizeof(int32_t), compare_ints);
            /* Adjacent intervals reaching the same targets are one transition. */
            Py_ssize_t last = out->rows.count / 3 - 1;
            if (last >= row_first && out->rows.items[3 * last + 1] == low - 1 && previous_count == active.count &&
                memcmp(&targets.items[previous_targets], reached, (size_t)active.count * sizeof(int32_t)) == 0) {
                out->rows.items[3 * last + 1] = high;
                targets.count = targets_at;
                continue;
            }
            previous_targets = targets_at;
            previous_count = (int32_t)active.count;
            /* The same targets come back in many rows: their state is looked up, not closed again. */
            int32_t number = setmap_get(&by_targets, reached, active.count);
            if (number < 0) {
                if (!closure(nfa, reached, active.count, stamp, mark++, &stack, &found)) {
                    status = SUBSETS_NO_MEMORY;
                    break;
                }
                number = setmap_get(&states, found.items, found.count);
                if (number < 0) {
                    if ((int32_t)states.values.count >= max_states) {
                        status = SUBSETS_TOO_BIG;
                        break;
                    }
                    number = (int32_t)states.values.count;
                    if (!setmap_put(&states, found.items, found.count, number)) {
                        status = SUBSETS_NO_MEMORY;
                        break;
                    }
                }
                if (!setmap_put(&by_targets, reached, active.count, number)) {
                    status = SUBSETS_NO_MEMORY;
                    break;
                }
            }
            if (!ints_push(&out->rows, low) || !ints_push(&out->rows, high) || !ints_push(&out->rows, number))
                status = SUBSETS_NO_MEMORY;
        }
        for (Py_ssize_t a = 0; a < active.count; a++)
            open[active.items[a]] = listed[active.items[a]] = 0;
        active.count = 0;
    }
    if (status == SUBSETS_DONE) {
        out->n = (int32_t)states.values.count;
        out->accepting = calloc((size_t)out->n + 1, 1);
        if (!out->accepting || !ints_push(&out->row_starts, (int32_t)(out->rows.count / 3)))
            status = SUBSETS_NO_MEMORY;
        for (int32_t s = 0; status == SUBSETS_DONE && s < out->n; s++)
            for (int32_t m = states.starts.items[s]; m < states.starts.items[s + 1]; m++)
                out->accepting[s] |= states.members.items[m] == end;
        if (status == SUBSETS_DONE && !dfa_prune(&out->n, out->row_starts.items, out->rows.items, out->accepting))
            status = SUBSETS_NO_MEMORY;
    }
done:
    setmap_free(&states);
    setmap_free(&by_targets);
    free(stack.items);
    free(found.items);
    free(targets.items);
    free(active.items);
    free(events);
    free(stamp);
    free(open);
    free(listed);
    return status;
}

/* nfa_determinize(edges, epsilon, start, end, max_states) -> (transitions, accepting) | None */
PyObject *edge_nfa_determinize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *edges, *epsilon, *result = NULL;
    int32_t start, end, max_states;
    if (!PyArg_ParseTuple(args, "OOiii", &edges, &epsilon, &start, &end, &max_states))
        return NULL;
    Nfa nfa = {0};
    Subsets out = {0};
    if (!nfa_read(edges, epsilon, &nfa))
        goto done;
    if (start < 0 || start >= nfa.n || end < 0 || end >= nfa.n || max_states < 1 || max_states > MAX_STATES_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "start and end must be states and max_states positive");
        goto done;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = subsets(&nfa, start, end, max_states, &out);
    Py_END_ALLOW_THREADS
    if (status == SUBSETS_NO_MEMORY)
        PyErr_NoMemory();
    else if (status == SUBSETS_TOO_BIG)
        result = Py_NewRef(Py_None);
    else
        result = dfa_result(out.n, out.row_starts.items, out.rows.items, out.accepting);
done:
    free(nfa.edge_starts.items);
    free(nfa.edges.items);
    free(nfa.epsilon_starts.items);
    free(nfa.epsilon.items);
    free(out.row_starts.items);
    free(out.rows.items);
    free(out.accepting);
    return result;
}
