//! Snapshot tests of what a network shows of itself: `summary()` and `to_dot()`.

use staticnet::prelude::*;

network! {
    pub struct Mlp {
        input: [784],
        fc1: dense(256), relu,
        fc2: dense(128), relu,
        head: dense(10),
    }
}

network! {
    pub struct Digits {
        input: [1, 28, 28],
        conv1: conv2d(16, kernel = 3), relu,
        max_pool(2),
        conv2: conv2d(32, kernel = 3, padding = 1), batch_norm, relu,
        max_pool(2),
        flatten,
        dropout(0.25),
        fc: dense(128), relu,
        head: dense(10),
    }
}

network! {
    pub struct Encoder { input: [4], fc: dense(3), tanh }
}

network! {
    pub struct Blocks {
        input: [2, 6, 6],
        stem: conv2d(4, kernel = 3, padding = same), relu,
        block: residual { conv2d(4, kernel = 3, padding = same), relu },
        cat: parallel(concat) { branch { conv2d(2, kernel = 1) } branch { max_pool(1), conv2d(3, kernel = 1) } },
        global_avg_pool,
        fc: dense(4),
        encoder: Encoder => [3],
    }
}

#[test]
fn mlp_summary() {
    assert_eq!(Mlp::summary(), &SNAP_MLP_SUMMARY[1..]);
}

#[test]
fn cnn_summary() {
    assert_eq!(Digits::summary(), &SNAP_DIGITS_SUMMARY[1..]);
}

#[test]
fn blocks_summary() {
    assert_eq!(Blocks::summary(), &SNAP_BLOCKS_SUMMARY[1..]);
}

#[test]
fn mlp_dot() {
    assert_eq!(Mlp::to_dot(), &SNAP_MLP_DOT[1..]);
}

#[test]
fn cnn_dot() {
    assert_eq!(Digits::to_dot(), &SNAP_DIGITS_DOT[1..]);
}

#[test]
fn blocks_dot() {
    assert_eq!(Blocks::to_dot(), &SNAP_BLOCKS_DOT[1..]);
}

const SNAP_MLP_SUMMARY: &str = r#"
Network: Mlp
================================================
layer   kind               output shape   params
------------------------------------------------
input                      [784]
fc1     dense(784 -> 256)  [256]         200,960
relu_1  relu               [256]               0
fc2     dense(256 -> 128)  [128]          32,896
relu_3  relu               [128]               0
head    dense(128 -> 10)   [10]            1,290
================================================
Total parameters: 235,146 (918.5 KiB as f32)
"#;

const SNAP_DIGITS_SUMMARY: &str = r#"
Network: Digits
==============================================================================
layer         kind                                       output shape   params
------------------------------------------------------------------------------
input                                                    [1, 28, 28]
conv1         conv2d(1 -> 16, kernel = 3)                [16, 26, 26]      160
relu_1        relu                                       [16, 26, 26]        0
max_pool_2    max_pool(2)                                [16, 13, 13]        0
conv2         conv2d(16 -> 32, kernel = 3, padding = 1)  [32, 13, 13]    4,640
batch_norm_4  batch_norm                                 [32, 13, 13]       64
relu_5        relu                                       [32, 13, 13]        0
max_pool_6    max_pool(2)                                [32, 6, 6]          0
flatten_7     flatten                                    [1152]              0
dropout_8     dropout(0.25)                              [1152]              0
fc            dense(1152 -> 128)                         [128]         147,584
relu_10       relu                                       [128]               0
head          dense(128 -> 10)                           [10]            1,290
==============================================================================
Total parameters: 153,738 (600.5 KiB as f32)
Non-trainable buffers: 64 (256 B as f32)
"#;

const SNAP_BLOCKS_SUMMARY: &str = r#"
Network: Blocks
===================================================================================
layer              kind                                        output shape  params
-----------------------------------------------------------------------------------
input                                                          [2, 6, 6]
stem               conv2d(2 -> 4, kernel = 3, padding = same)  [4, 6, 6]         76
relu_1             relu                                        [4, 6, 6]          0
block              residual                                    [4, 6, 6]        148
  conv2d_0         conv2d(4 -> 4, kernel = 3, padding = same)  [4, 6, 6]        148
  relu_1           relu                                        [4, 6, 6]          0
cat                parallel(concat)                            [5, 6, 6]         25
  branch 0
    conv2d_0       conv2d(4 -> 2, kernel = 1)                  [2, 6, 6]         10
  branch 1
    max_pool_0     max_pool(1)                                 [4, 6, 6]          0
    conv2d_1       conv2d(4 -> 3, kernel = 1)                  [3, 6, 6]         15
global_avg_pool_4  global_avg_pool                             [5]                0
fc                 dense(5 -> 4)                               [4]               24
encoder            Encoder                                     [3]               15
  fc               dense(4 -> 3)                               [3]               15
  tanh_1           tanh                                        [3]                0
===================================================================================
Total parameters: 288 (1.1 KiB as f32)
"#;

const SNAP_MLP_DOT: &str = r#"
digraph "Mlp" {
    rankdir=TB;
    node [shape=box, style=rounded, fontname="Helvetica"];
    "input" [label="input\n[784]", shape=ellipse];
    "fc1" [label="fc1\ndense(784 -> 256)\n[256]"];
    "relu_1" [label="relu_1\nrelu\n[256]"];
    "fc2" [label="fc2\ndense(256 -> 128)\n[128]"];
    "relu_3" [label="relu_3\nrelu\n[128]"];
    "head" [label="head\ndense(128 -> 10)\n[10]"];
    "input" -> "fc1";
    "fc1" -> "relu_1";
    "relu_1" -> "fc2";
    "fc2" -> "relu_3";
    "relu_3" -> "head";
}
"#;

const SNAP_DIGITS_DOT: &str = r#"
digraph "Digits" {
    rankdir=TB;
    node [shape=box, style=rounded, fontname="Helvetica"];
    "input" [label="input\n[1, 28, 28]", shape=ellipse];
    "conv1" [label="conv1\nconv2d(1 -> 16, kernel = 3)\n[16, 26, 26]"];
    "relu_1" [label="relu_1\nrelu\n[16, 26, 26]"];
    "max_pool_2" [label="max_pool_2\nmax_pool(2)\n[16, 13, 13]"];
    "conv2" [label="conv2\nconv2d(16 -> 32, kernel = 3, padding = 1)\n[32, 13, 13]"];
    "batch_norm_4" [label="batch_norm_4\nbatch_norm\n[32, 13, 13]"];
    "relu_5" [label="relu_5\nrelu\n[32, 13, 13]"];
    "max_pool_6" [label="max_pool_6\nmax_pool(2)\n[32, 6, 6]"];
    "flatten_7" [label="flatten_7\nflatten\n[1152]"];
    "dropout_8" [label="dropout_8\ndropout(0.25)\n[1152]"];
    "fc" [label="fc\ndense(1152 -> 128)\n[128]"];
    "relu_10" [label="relu_10\nrelu\n[128]"];
    "head" [label="head\ndense(128 -> 10)\n[10]"];
    "input" -> "conv1";
    "conv1" -> "relu_1";
    "relu_1" -> "max_pool_2";
    "max_pool_2" -> "conv2";
    "conv2" -> "batch_norm_4";
    "batch_norm_4" -> "relu_5";
    "relu_5" -> "max_pool_6";
    "max_pool_6" -> "flatten_7";
    "flatten_7" -> "dropout_8";
    "dropout_8" -> "fc";
    "fc" -> "relu_10";
    "relu_10" -> "head";
}
"#;

const SNAP_BLOCKS_DOT: &str = r#"
digraph "Blocks" {
    rankdir=TB;
    node [shape=box, style=rounded, fontname="Helvetica"];
    "input" [label="input\n[2, 6, 6]", shape=ellipse];
    "stem" [label="stem\nconv2d(2 -> 4, kernel = 3, padding = same)\n[4, 6, 6]"];
    "relu_1" [label="relu_1\nrelu\n[4, 6, 6]"];
    subgraph "cluster_block" {
        label="block"; style=dashed;
        "block.0.conv2d_0" [label="conv2d_0\nconv2d(4 -> 4, kernel = 3, padding = same)\n[4, 6, 6]"];
        "block.0.relu_1" [label="relu_1\nrelu\n[4, 6, 6]"];
        "block" [label="block\nresidual\n[4, 6, 6]", shape=diamond];
    }
    subgraph "cluster_cat" {
        label="cat"; style=dashed;
        "cat.0.conv2d_0" [label="conv2d_0\nconv2d(4 -> 2, kernel = 1)\n[2, 6, 6]"];
        "cat.1.max_pool_0" [label="max_pool_0\nmax_pool(1)\n[4, 6, 6]"];
        "cat.1.conv2d_1" [label="conv2d_1\nconv2d(4 -> 3, kernel = 1)\n[3, 6, 6]"];
        "cat" [label="cat\nparallel(concat)\n[5, 6, 6]", shape=diamond];
    }
    "global_avg_pool_4" [label="global_avg_pool_4\nglobal_avg_pool\n[5]"];
    "fc" [label="fc\ndense(5 -> 4)\n[4]"];
    subgraph "cluster_encoder" {
        label="encoder"; style=dashed;
        "encoder.0.fc" [label="fc\ndense(4 -> 3)\n[3]"];
        "encoder.0.tanh_1" [label="tanh_1\ntanh\n[3]"];
        "encoder" [label="encoder\nEncoder\n[3]", shape=diamond];
    }
    "input" -> "stem";
    "stem" -> "relu_1";
    "relu_1" -> "block.0.conv2d_0";
    "block.0.conv2d_0" -> "block.0.relu_1";
    "block.0.relu_1" -> "block";
    "relu_1" -> "block" [style=dashed, label="skip"];
    "block" -> "cat.0.conv2d_0";
    "block" -> "cat.1.max_pool_0";
    "cat.1.max_pool_0" -> "cat.1.conv2d_1";
    "cat.0.conv2d_0" -> "cat";
    "cat.1.conv2d_1" -> "cat";
    "cat" -> "global_avg_pool_4";
    "global_avg_pool_4" -> "fc";
    "fc" -> "encoder.0.fc";
    "encoder.0.fc" -> "encoder.0.tanh_1";
    "encoder.0.tanh_1" -> "encoder";
}
"#;
