export const VERSION = "moq-lite-05";
