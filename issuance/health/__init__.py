"""The electronic health book (sổ sức khỏe điện tử): ICD-10 codes, visit records and the citizen's book."""
