;; The Extism side of the benchmark: the same job as bench.c for a small context. It reads the whole
;; input (the JSON context) into its memory, as a native plugin receives it, and answers the same
;; small JSON result through Extism's output block.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 2)
  ;; The result, padded with spaces to a multiple of 8 bytes (JSON allows trailing whitespace).
  (data (i32.const 0) "{\"success\":true,\"output\":{\"ok\":true},\"error\":null,\"files\":[]}   ")
  (func (export "execute") (result i32)
    (local $len i64) (local $i i64) (local $out i64)
    (local.set $len (call $input_length))
    ;; Copy the input into linear memory at 1024: 8 bytes at a time, then the tail byte by byte.
    (block $words
      (loop $copy
        (br_if $words (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $len)))
        (i64.store (i32.add (i32.const 1024) (i32.wrap_i64 (local.get $i))) (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $copy)))
    (block $bytes
      (loop $tail
        (br_if $bytes (i64.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (i32.const 1024) (i32.wrap_i64 (local.get $i))) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $tail)))
    (local.set $out (call $alloc (i64.const 64)))
    (local.set $i (i64.const 0))
    (block $written
      (loop $store
        (br_if $written (i64.ge_u (local.get $i) (i64.const 64)))
        (call $store_u64 (i64.add (local.get $out) (local.get $i)) (i64.load (i32.wrap_i64 (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $store)))
    (call $output_set (local.get $out) (i64.const 64))
    (i32.const 0)))
