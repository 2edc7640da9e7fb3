"""FER-2013 in memory: the file readers (CSV, image folder), the parsed-data cache, class
sets and splits (``load``), augmentation and input normalization."""
