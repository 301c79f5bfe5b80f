#!/bin/bash
# ZOOREPRO STAND-IN for MindIE-LLM's examples/models/llava/llava_videobench/run_pa_videobench.sh
# (Ascend/MindIE-LLM 8b4871ad31). Not MindIE: it runs the stand-in llava_videobench.py beside it,
# which answers with transformers on the CPU. Same positional arguments and defaults:
#   MODEL_PATH VIDEO_DIR EVAL_QA_ROOT CHAT_CONVERSATION_OUTPUT_FOLDER [MAX_BATCH_SIZE MAX_INPUT_LENGTH MAX_OUTPUT_LENGTH]
# Like the real script it exports its own card list (the caller's ASCEND_RT_VISIBLE_DEVICES is
# overridden, as the document says: edit the script to choose cards) and needs MASTER_PORT from the
# caller (the real one passes it to torchrun --master_port). The real script starts
# `torchrun --nproc_per_node <cards> ...`; the stand-in runs one CPU process.
echo "[W] ZOOREPRO STAND-IN: MindIE-LLM run_pa_videobench.sh (imitates 8b4871ad31; transformers on CPU, no NPU)"
export ASCEND_RT_VISIBLE_DEVICES=6

MAX_BATCH_SIZE=1
MAX_INPUT_LENGTH=2048
MAX_OUTPUT_LENGTH=256
world_size=$(( $(echo "${ASCEND_RT_VISIBLE_DEVICES}" | tr -cd , | wc -c) + 1 ))

if [ $# -eq 0 ]; then
    echo "Error: require parameter. Please refer to README."
    exit 1
fi
names=(MODEL_PATH IMAGE_PATH EVAL_QA_ROOT CHAT_CONVERSATION_OUTPUT_FOLDER MAX_BATCH_SIZE MAX_INPUT_LENGTH MAX_OUTPUT_LENGTH)
for name in "${names[@]}"; do
    if [ -n "$1" ]; then
        printf -v "$name" '%s' "$1"
        echo "[$name]: $1"
        shift
    fi
done
if [ -z "${MASTER_PORT}" ]; then
    echo "torchrun: error: argument --master_port: expected one argument (MASTER_PORT is not set)" >&2
    exit 2
fi
echo "[MASTER_PORT]: ${MASTER_PORT} [ASCEND_RT_VISIBLE_DEVICES]: ${ASCEND_RT_VISIBLE_DEVICES} [world_size]: ${world_size}"

exec "${ZOOREPRO_STANDIN_PYTHON:-python3}" -m examples.models.llava.llava_videobench.llava_videobench \
    --model_path "$MODEL_PATH" --image_or_video_path "$IMAGE_PATH" --Eval_QA_root "$EVAL_QA_ROOT" \
    --chat_conversation_output_folder "$CHAT_CONVERSATION_OUTPUT_FOLDER" --max_batch_size "$MAX_BATCH_SIZE" \
    --max_input_length "$MAX_INPUT_LENGTH" --max_output_length "$MAX_OUTPUT_LENGTH"
