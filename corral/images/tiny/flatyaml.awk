# flatyaml.awk: read the seed documents Corral writes, inside the tiny guest.
#
# Contract with corral/images/seed.py: the documents are PyYAML block style
# with two-space indentation; a sequence is written as "- item" lines at the
# indentation of its key (or deeper); every scalar sits on one line, plain,
# 'single-quoted' (inner quote doubled) or "double-quoted" (YAML's backslash
# escapes, \xXX \uXXXX \UXXXXXXXX included); empty collections appear as
# {} or []. Anchors, tags, block literals and folded lines never occur. This
# is not a YAML parser: it is the inverse of that one writer, small enough for
# busybox awk.
#
# Every scalar gets a PATH: its keys and 0-based sequence indexes joined by
# dots, e.g. users.0.name, ethernets.eth0.addresses.0.
#
# Modes (awk -v NAME=VALUE):
#   (none)        print PATH=VALUE for every scalar
#   get=PATH      print the value at PATH (nothing if absent)
#   keys=PATH     print the keys or indexes directly under PATH, once each
#   each=REGEX    print the value of every PATH matching ^REGEX$, in order

# The escapes PyYAML's double-quoted style writes (YAML 1.1, section 5.7).
# Code points become UTF-8 bytes; busybox awk strings are bytes.
function unescape(c, v, i,    hex) {
    if (c == "n") return "\n"
    if (c == "t" || c == "\t") return "\t"
    if (c == "r") return "\r"
    if (c == "e") return "\033"
    if (c == "a") return "\007"
    if (c == "b") return "\010"
    if (c == "v") return "\013"
    if (c == "f") return "\014"
    if (c == "0") return ""
    if (c == "N") return utf8(133)
    if (c == "_") return utf8(160)
    if (c == "L") return utf8(8232)
    if (c == "P") return utf8(8233)
    return c
}

function hexvalue(h,    i, n) {
    n = 0
    for (i = 1; i <= length(h); i++) n = n * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
    return n
}

function utf8(cp) {
    if (cp < 128) return sprintf("%c", cp)
    if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
    if (cp < 65536) {
        return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
    }
    return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64,
                   128 + int(cp / 64) % 64, 128 + cp % 64)
}

function unquote(v,    out, i, n, c, width) {
    if (v ~ /^'.*'$/) {
        v = substr(v, 2, length(v) - 2)
        gsub(/''/, "'", v)
        return v
    }
    if (v ~ /^".*"$/) {
        v = substr(v, 2, length(v) - 2)
        out = ""
        n = length(v)
        for (i = 1; i <= n; i++) {
            c = substr(v, i, 1)
            if (c == "\\" && i < n) {
                i++
                c = substr(v, i, 1)
                width = c == "x" ? 2 : c == "u" ? 4 : c == "U" ? 8 : 0
                if (width > 0) {
                    c = utf8(hexvalue(substr(v, i + 1, width)))
                    i += width
                } else {
                    c = unescape(c)
                }
            }
            out = out c
        }
        return out
    }
    return v
}

function join(parent, child) {
    return parent == "" ? child : parent "." child
}

# The stack holds open containers: the indentation they were opened at, their
# path, and whether they are a "- " item (which a sibling "- " closes).
function pop_to(indent, is_dash) {
    while (depth > 0 && (st_indent[depth] > indent ||
           (st_indent[depth] == indent && (!is_dash || st_item[depth])))) {
        depth--
    }
}

function top_path() {
    return depth > 0 ? st_path[depth] : ""
}

function push(indent, path, item) {
    depth++
    st_indent[depth] = indent
    st_path[depth] = path
    st_item[depth] = item
}

function emit(path, value,    rest, child) {
    if (value == "{}" || value == "[]") return
    value = unquote(value)
    if (get != "") {
        if (path == get) print value
    } else if (keys != "") {
        if (index(path, keys ".") == 1) {
            rest = substr(path, length(keys) + 2)
            child = rest
            sub(/\..*/, "", child)
            if (!(child in seen_key)) {
                seen_key[child] = 1
                print child
            }
        }
    } else if (each != "") {
        if (path ~ ("^" each "$")) print value
    } else {
        print path "=" value
    }
}

# A "key: value" or "key:" at indentation `indent` (already popped to).
function mapping(indent, text,    key, value, pos) {
    pos = index(text, ": ")
    if (pos > 0) {
        key = substr(text, 1, pos - 1)
        value = substr(text, pos + 2)
        sub(/^ +/, "", value)
    } else {
        key = substr(text, 1, length(text) - 1)
        value = ""
    }
    key = unquote(key)
    if (value == "") {
        push(indent, join(top_path(), key), 0)
    } else {
        emit(join(top_path(), key), value)
    }
}

function dash(indent, text,    parent, item) {
    pop_to(indent, 1)
    parent = top_path()
    item = join(parent, count[parent]++)
    push(indent, item, 1)
    text = substr(text, 3)
    if (text ~ /^[^'" ][^:]*:( |$)/ || text ~ /^'[^']*':( |$)/) {
        mapping(indent + 2, text)
    } else {
        emit(item, text)
    }
}

/^#/ || /^---/ || /^[ \t]*$/ { next }

{
    line = $0
    sub(/\r$/, "", line)
    match(line, /^ */)
    indent = RLENGTH
    text = substr(line, indent + 1)
    if (text ~ /^- / || text == "-") {
        dash(indent, text)
    } else {
        pop_to(indent, 0)
        mapping(indent, text)
    }
}
