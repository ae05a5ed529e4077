"""Files and videos: the bottom layer (imports nothing else of poselab but errors).

project.py (config.yaml), labels.py (CollectedData), predictions.py (prediction tables),
video.py (the only module that opens videos), frames.py (keyframes), synthetic.py,
info.py, fileio.py (atomic writes). Conversion to and from other tools' formats lands here.
"""
